import { Instance } from '@cdktf/provider-aws/lib/instance';
import { KeyPair } from '@cdktf/provider-aws/lib/key-pair';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Construct } from 'constructs';
import { NixosBastion, NixosSystem, NixosSystemOptions } from './nixos-system';
import { NixosProvider } from './provider/nixos-provider';
import { checkHostKey, checkOneOf, checkPort, fail, isUnresolved, show, SSH_PUBLIC_KEY } from './validation';

/** Which of the instance's addresses the deployer connects to. */
export type Ec2AddressKind = 'public' | 'private';

/** Props of a NixOS EC2 machine: the instance, and the system on it. */
export interface NixosEc2MachineProps extends NixosSystemOptions {
  /** A NixOS AMI id (`ami-…`), for example from https://nixos.github.io/amis/. */
  readonly ami: string;
  /**
   * The SSH public key (`TYPE BASE64 [comment]`) put into an `aws_key_pair` and authorised
   * for root. The private key stays in a file or the agent on the deployer, never in state.
   */
  readonly sshPublicKey: string;
  /** The private key file for that public key. @default the provider's, or the SSH agent */
  readonly privateKeyFile?: string;
  /**
   * The instance's SSH host key, `TYPE BASE64`, when you know it (e.g. read from the
   * instance's console output out of band).
   * @default none: trust on first use (see the class documentation for the risk)
   */
  readonly hostKey?: string;
  /** @default 't3.micro' */
  readonly instanceType?: string;
  /** The address the deployer uses. 'private' needs a route into the VPC (VPN, bastion). @default 'public' */
  readonly address?: Ec2AddressKind;
  /** @default the default subnet of the default VPC */
  readonly subnetId?: string;
  /** The VPC of the security group; must be `subnetId`'s VPC. @default the default VPC */
  readonly vpcId?: string;
  /** Who may reach SSH (port 22). @default ['0.0.0.0/0'] */
  readonly sshCidrBlocks?: readonly string[];
  /** Further TCP ports to open, e.g. [80, 443]. @default none */
  readonly extraPorts?: readonly number[];
  /** Who may reach `extraPorts`. @default ['0.0.0.0/0'] */
  readonly extraPortsCidrBlocks?: readonly string[];
  /** @default the AMI's root volume size */
  readonly rootVolumeSizeGib?: number;
  /** @default 'root' (NixOS AMIs authorise the key pair for root) */
  readonly user?: string;
  /** @default a direct connection */
  readonly bastion?: NixosBastion;
  /** Tags of the AWS resources. @default { Name: the construct path } */
  readonly tags?: { readonly [key: string]: string };
  /** @default the stack's `nixos` provider */
  readonly provider?: NixosProvider;
}

const AMI = /^ami-[0-9a-f]{8,17}$/;
const CIDR = /^([0-9]{1,3}\.){3}[0-9]{1,3}\/[0-9]{1,2}$|^[0-9a-fA-F:]+\/[0-9]{1,3}$/;

/**
 * An EC2 instance running a NixOS system: an `aws_instance` from a NixOS AMI, an
 * `aws_key_pair` from your public key, a security group that allows SSH (and
 * `extraPorts`), and a `NixosSystem` that deploys to the instance's public or private IP.
 *
 * **Host key pinning.** With `hostKey`, the connection is refused unless the instance
 * presents that key. Without it, the first key the instance presents is recorded (in the
 * provider's known_hosts file and the resource's `host_key_seen`) and enforced from then
 * on. The risk: whoever answers at that address on the very first connection (a
 * man-in-the-middle, or a reused IP) is trusted, and a recorded key lives on the deployer
 * that first connected, so another deployer trusts on first use again. A replaced instance
 * comes with a new address, so its new key is recorded anew; one that comes back on an
 * address with a recorded key is refused until that entry is removed.
 */
export class NixosEc2Machine extends Construct {
  public readonly instance: Instance;
  public readonly keyPair: KeyPair;
  public readonly securityGroup: SecurityGroup;
  /** The NixOS system on the instance. */
  public readonly system: NixosSystem;
  /** The address the deployer connects to (public or private IP, per `address`). */
  public readonly address: string;
  /** The instance's private IP, for other machines in the VPC. */
  public readonly privateIp: string;
  /** The instance's public IP (empty when it has none). */
  public readonly publicIp: string;
  /** The system closure on the instance. */
  public readonly closurePath: string;
  /** The system profile generation on the instance. */
  public readonly generation: number;

  constructor(scope: Construct, id: string, props: NixosEc2MachineProps) {
    super(scope, id);
    this.validate(props);
    const tags = props.tags ?? { Name: this.node.path };

    this.keyPair = new KeyPair(this, 'KeyPair', { keyNamePrefix: `${id}-`, publicKey: props.sshPublicKey, tags });
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      namePrefix: `${id}-`,
      description: 'SSH (and the given ports) to a NixOS machine deployed by cdktf-nixos',
      vpcId: props.vpcId,
      tags,
    });
    const open = (ruleId: string, port: number, cidrs: readonly string[]) =>
      cidrs.forEach((cidr, i) =>
        new VpcSecurityGroupIngressRule(this, `${ruleId}${i}`, {
          securityGroupId: this.securityGroup.id,
          ipProtocol: 'tcp',
          fromPort: port,
          toPort: port,
          ...(cidr.includes(':') ? { cidrIpv6: cidr } : { cidrIpv4: cidr }),
        }),
      );
    open('Ssh', 22, props.sshCidrBlocks ?? ['0.0.0.0/0']);
    for (const port of props.extraPorts ?? []) open(`Port${port}-`, port, props.extraPortsCidrBlocks ?? ['0.0.0.0/0']);
    new VpcSecurityGroupEgressRule(this, 'Egress', { securityGroupId: this.securityGroup.id, ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' });

    this.instance = new Instance(this, 'Instance', {
      ami: props.ami,
      instanceType: props.instanceType ?? 't3.micro',
      keyName: this.keyPair.keyName,
      subnetId: props.subnetId,
      vpcSecurityGroupIds: [this.securityGroup.id],
      rootBlockDevice: props.rootVolumeSizeGib === undefined ? undefined : { volumeSize: props.rootVolumeSizeGib },
      tags,
    });
    this.privateIp = this.instance.privateIp;
    this.publicIp = this.instance.publicIp;
    this.address = (props.address ?? 'public') === 'public' ? this.publicIp : this.privateIp;

    const { ami: _a, sshPublicKey: _k, instanceType: _t, address: _d, subnetId: _s, vpcId: _v, sshCidrBlocks: _c, extraPorts: _p, extraPortsCidrBlocks: _e, rootVolumeSizeGib: _r, tags: _g, ...system } = props;
    this.system = new NixosSystem(this, 'System', { ...system, host: this.address });
    this.closurePath = this.system.closurePath;
    this.generation = this.system.generation;
  }

  private validate(props: NixosEc2MachineProps): void {
    if (!isUnresolved(props.ami) && !AMI.test(props.ami)) {
      fail(this, `ami ${show(props.ami)} is not an AMI id. Give a NixOS AMI of the stack's region, "ami-" and 8 or 17 hex digits (see https://nixos.github.io/amis/).`);
    }
    if (!isUnresolved(props.sshPublicKey) && !SSH_PUBLIC_KEY.test(props.sshPublicKey.trim())) {
      fail(this, `sshPublicKey ${show(props.sshPublicKey)} is not an SSH public key. Give the content of a .pub file ("ssh-ed25519 AAAA… comment"); the private key stays on the deployer.`);
    }
    checkOneOf(this, 'address', props.address, ['public', 'private']);
    checkHostKey(this, 'hostKey', props.hostKey);
    (props.extraPorts ?? []).forEach((port, i) => checkPort(this, `extraPorts[${i}]`, port));
    for (const [name, cidrs] of [['sshCidrBlocks', props.sshCidrBlocks], ['extraPortsCidrBlocks', props.extraPortsCidrBlocks]] as const) {
      (cidrs ?? []).forEach((cidr, i) => {
        if (!isUnresolved(cidr) && !CIDR.test(cidr)) fail(this, `${name}[${i}] ${show(cidr)} is not a CIDR block. Use e.g. "203.0.113.0/24", "0.0.0.0/0" or "2001:db8::/32".`);
      });
    }
    const size = props.rootVolumeSizeGib;
    if (size !== undefined && !isUnresolved(size) && !(Number.isInteger(size) && size >= 1)) {
      fail(this, `rootVolumeSizeGib ${show(size)} must be a whole number of GiB, at least 1 (a NixOS system wants 8 or more).`);
    }
  }
}
