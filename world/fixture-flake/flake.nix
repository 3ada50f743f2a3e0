{
  description = "cdktf-nixos test fixture: NixOS-shaped systems whose builder is /bin/sh";

  # No inputs: nothing here needs nixpkgs or the network. Each configuration looks like
  # the result of nixpkgs's lib.nixosSystem as far as a deployer can tell: it has
  # config.system.build.toplevel and extendModules { specialArgs }.
  outputs = { self }:
    let
      settings = builtins.fromJSON (builtins.readFile ./settings.json);
      system = "x86_64-linux";
      PATH = "/usr/local/bin:/usr/bin:/bin";

      base = derivation {
        name = "fixture-base-1";
        inherit system PATH;
        builder = "/bin/sh";
        args = [ "-c" "mkdir -p $out/lib && echo fixture-base > $out/lib/base.txt" ];
      };

      package = p: derivation {
        name = "${p.name}-${p.version}";
        inherit system PATH base;
        builder = "/bin/sh";
        args = [ ./build-package.sh ];
        sizeBytes = toString p.sizeBytes;
        pname = p.name;
        inherit (p) version;
      };

      failingPackage = derivation {
        name = "fixture-broken-1";
        inherit system PATH;
        builder = "/bin/sh";
        args = [ "-c" "echo compiling fixture-broken; echo 'error: this package fails to build on purpose' >&2; exit 1" ];
      };

      packages = map package settings.packages;

      # settings.machinePackages.NAME: packages of machine NAME only, replacing the shared
      # ones of the same name (another version) or added to them. Without it the machine's
      # package list is exactly the shared one.
      packagesOf = name:
        let
          own = (settings.machinePackages or { }).${name} or [ ];
          ownNames = map (p: p.name) own;
        in
        if own == [ ] then packages
        else map package (builtins.filter (p: !(builtins.elem p.name ownNames)) settings.packages ++ own);

      toplevel = name: variant: specialArgs: derivation {
        name = "nixos-system-${name}-${settings.version}";
        inherit system PATH variant;
        builder = "/bin/sh";
        args = [ ./build-toplevel.sh ];
        systemVersion = settings.version;
        terraformArgs = builtins.toJSON (specialArgs.terraform or null);
        packages = packagesOf name ++ (if variant == "build-fail" then [ failingPackage ] else [ ]);
        activate = ./switch-to-configuration.sh;
        service = ./service.js;
        slowSeconds = toString (settings.slowServiceSeconds or 5);
      };

      nixosSystem = name: variant: specialArgs: {
        config.system.build.toplevel =
          if variant == "eval-error"
          then throw "The option `services.fixture.port' is used but not defined (this configuration fails evaluation on purpose)."
          else toplevel name variant specialArgs;
        extendModules = { specialArgs ? { }, ... }: nixosSystem name variant specialArgs;
      };

      variants = [ "good" "fail-activation" "service-down" "slow-service" "slow-activation" "break-ssh" "build-fail" "eval-error" ];
      extraNames = settings.machines or [ ];
    in
    {
      nixosConfigurations =
        builtins.listToAttrs (map (v: { name = v; value = nixosSystem v v { }; }) variants)
        // builtins.listToAttrs (map (n: { name = n; value = nixosSystem n "good" { }; }) extraNames);
    };
}
