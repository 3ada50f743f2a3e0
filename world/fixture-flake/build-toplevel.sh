# Builds a NixOS-shaped system closure: bin/switch-to-configuration, etc/, sw/.
set -e
mkdir -p "$out/bin" "$out/etc" "$out/sw" "$out/share"
for p in $packages; do
  ln -s "$p" "$out/sw/$(basename "$p" | cut -d- -f2-)"
done
sed -e "s|@out@|$out|g" -e "s|@variant@|$variant|g" -e "s|@slow@|$slowSeconds|g" \
  "$activate" > "$out/bin/switch-to-configuration"
chmod 555 "$out/bin/switch-to-configuration"
cp "$service" "$out/share/service.js"
printf '%s\n' "$systemVersion" > "$out/nixos-version"
printf '%s\n' "$terraformArgs" > "$out/etc/terraform.json"
printf '%s\n' "$variant" > "$out/etc/variant"
