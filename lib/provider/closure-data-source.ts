import { IResolvable, TerraformDataSource, TerraformMetaArguments } from 'cdktf';
import { Construct } from 'constructs';
import { SpecialArgs } from './system-resource';

/** The arguments of a `nixos_closure` data source. */
export interface ClosureDataSourceConfig extends TerraformMetaArguments {
  /** `PATH#NAME`: nixosConfigurations.NAME of the flake at PATH. */
  readonly flake: string;
  /** @default none */
  readonly specialArgs?: SpecialArgs | IResolvable;
  /** Also build the closure on the deployer. @default false */
  readonly build?: boolean;
}

/**
 * Data source `nixos_closure`: evaluates (and with `build`, builds) a NixOS configuration
 * on the deployer without deploying it.
 */
export class ClosureDataSource extends TerraformDataSource {
  /** The Terraform type name of this data source. */
  public static readonly tfResourceType = 'nixos_closure';

  /** The arguments as given. */
  public readonly config: ClosureDataSourceConfig;

  constructor(scope: Construct, id: string, config: ClosureDataSourceConfig) {
    super(scope, id, {
      terraformResourceType: ClosureDataSource.tfResourceType,
      terraformGeneratorMetadata: { providerName: 'nixos' },
      provider: config.provider,
      dependsOn: config.dependsOn,
      count: config.count,
      lifecycle: config.lifecycle,
      forEach: config.forEach,
    });
    this.config = config;
  }

  /** `out_path`: the system closure's store path. */
  public get outPath(): string {
    return this.getStringAttribute('out_path');
  }

  /** `drv_path`: its derivation. */
  public get drvPath(): string {
    return this.getStringAttribute('drv_path');
  }

  /** `closure_size`: bytes of the whole closure, when it is in the deployer's store. */
  public get closureSize(): number {
    return this.getNumberAttribute('closure_size');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return { flake: this.config.flake, special_args: this.config.specialArgs, build: this.config.build };
  }
}
