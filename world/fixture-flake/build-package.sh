# Builds one fixture package: a payload of the requested size and a reference to base.
set -e
mkdir -p "$out/share/$pname" "$out/lib"
ln -s "$base" "$out/lib/base"
echo "$pname $version" > "$out/share/$pname/version"
if [ "$sizeBytes" -gt 0 ]; then
  head -c "$sizeBytes" /dev/urandom > "$out/share/$pname/payload"
fi
