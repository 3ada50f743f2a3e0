import { Fn, Token } from 'cdktf';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { KeyPair } from '@cdktf/provider-aws/lib/key-pair';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { NixosEc2Machine, NixosEc2MachineProps, NixosSystem } from '../../../lib';
import { HOST_KEY, onlyResource, synthJson } from './setup';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4N8sVspYasBq6pJ6B3joKVObN/1NILlYhF9agYlBkt me@laptop';
const props: NixosEc2MachineProps = { ami: 'ami-0123456789abcdef0', sshPublicKey: SSH_KEY, flake: '/f#web' };

function machine(extra: Partial<NixosEc2MachineProps> = {}): { [key: string]: any } {
  return synthJson((scope) => new NixosEc2Machine(scope, 'web', { ...props, ...extra }));
}

describe('NixosEc2Machine', () => {
  it('makes an instance, a key pair, a security group for SSH and a system on the public IP', () => {
    const json = machine();
    const text = JSON.stringify(json);
    expect(text).toHaveResourceWithProperties(KeyPair, { key_name_prefix: 'web-', public_key: SSH_KEY });
    expect(text).toHaveResourceWithProperties(Instance, { ami: 'ami-0123456789abcdef0', instance_type: 't3.micro', tags: { Name: 'stack/web' } });
    expect(text).toHaveResource(SecurityGroup);
    expect(text).toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr_ipv4: '0.0.0.0/0' });
    expect(text).toHaveResourceWithProperties(VpcSecurityGroupEgressRule, { ip_protocol: '-1', cidr_ipv4: '0.0.0.0/0' });
    const instance = onlyResource(json, 'aws_instance');
    expect(instance.key_name).toMatch(/^\$\{aws_key_pair\.web_KeyPair_\w+\.key_name\}$/);
    expect(instance.vpc_security_group_ids).toEqual([expect.stringMatching(/^\$\{aws_security_group\.web_SecurityGroup_\w+\.id\}$/)]);
    const system = onlyResource(json, 'nixos_system');
    expect(system.host).toMatch(/^\$\{aws_instance\.web_Instance_\w+\.public_ip\}$/);
    expect(system.flake).toBe('/f#web');
    expect(system.host_key).toBeUndefined(); // trust on first use, then enforced
    expect(text).not.toMatch(/BEGIN OPENSSH PRIVATE KEY/);
  });

  it('targets the private IP, pins a given host key, opens extra ports and passes system props', () => {
    const json = machine({
      address: 'private',
      hostKey: HOST_KEY,
      privateKeyFile: '/root/.ssh/aws',
      extraPorts: [80, 443],
      sshCidrBlocks: ['203.0.113.0/24', '2001:db8::/32'],
      extraPortsCidrBlocks: ['10.0.0.0/8'],
      instanceType: 't3.small',
      subnetId: 'subnet-1',
      vpcId: 'vpc-1',
      rootVolumeSizeGib: 20,
      tags: { team: 'ops' },
      user: 'deploy',
      keys: { a: { file: '/s' } },
      magicRollback: false,
    });
    const system = onlyResource(json, 'nixos_system');
    expect(system).toMatchObject({ host_key: HOST_KEY, private_key_file: '/root/.ssh/aws', user: 'deploy', keys: { a: { file: '/s' } }, magic_rollback_seconds: 0 });
    expect(system.host).toMatch(/\.private_ip\}$/);
    expect(onlyResource(json, 'aws_instance')).toMatchObject({ instance_type: 't3.small', subnet_id: 'subnet-1', root_block_device: { volume_size: 20 }, tags: { team: 'ops' } });
    expect(onlyResource(json, 'aws_security_group').vpc_id).toBe('vpc-1');
    const rules = Object.values(json.resource.aws_vpc_security_group_ingress_rule as object).map((r) => [r.from_port, r.cidr_ipv4 ?? r.cidr_ipv6]);
    expect(rules.sort()).toEqual([[22, '2001:db8::/32'], [22, '203.0.113.0/24'], [443, '10.0.0.0/8'], [80, '10.0.0.0/8']].sort());
  });

  it('exposes the addresses, the system, its closure and generation', () => {
    synthJson((scope) => {
      const m = new NixosEc2Machine(scope, 'web', props);
      expect(m.system).toBeInstanceOf(NixosSystem);
      expect(m.closurePath).toBe(m.system.closurePath);
      expect(m.generation).toBe(m.system.generation);
      expect(m.address).toBe(m.publicIp);
      expect(Token.isUnresolved(m.privateIp)).toBe(true);
    });
  });

  const invalid = (extra: Partial<NixosEc2MachineProps>) => {
    try {
      machine(extra);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it.each([
    ['a bad AMI', { ami: 'nixos-24.05' }, /NixosEc2Machine stack\/web: ami "nixos-24\.05" is not an AMI id\. Give a NixOS AMI/],
    ['a bad SSH public key', { sshPublicKey: '-----BEGIN OPENSSH PRIVATE KEY-----' }, /sshPublicKey .* is not an SSH public key\. Give the content of a \.pub file/],
    ['an unknown address', { address: 'elastic' as never }, /address "elastic" is unknown\. Use one of "public", "private"\./],
    ['a bad host key', { hostKey: 'x' }, /hostKey "x" is not an SSH public key/],
    ['a bad extra port', { extraPorts: [80, 0] }, /extraPorts\[1\] 0 is not a TCP port/],
    ['a bad SSH CIDR', { sshCidrBlocks: ['10.0.0.1'] }, /sshCidrBlocks\[0\] "10\.0\.0\.1" is not a CIDR block\. Use e\.g\. "203\.0\.113\.0\/24"/],
    ['a bad extra ports CIDR', { extraPortsCidrBlocks: ['any'] }, /extraPortsCidrBlocks\[0\] "any" is not a CIDR block/],
    ['a zero root volume', { rootVolumeSizeGib: 0 }, /rootVolumeSizeGib 0 must be a whole number of GiB/],
    ['an invalid system prop', { flake: 'no-name' }, /NixosSystem stack\/web\/System: flake "no-name" names no configuration/],
  ] as [string, Partial<NixosEc2MachineProps>, RegExp][])('rejects %s', (_n, extra, message) => {
    expect(invalid(extra)).toMatch(message);
  });

  it('skips checks of unresolved tokens', () => {
    const json = machine({ ami: Fn.lower('AMI'), sshPublicKey: Fn.lower('K'), sshCidrBlocks: [Fn.lower('C')], rootVolumeSizeGib: Token.asNumber(Fn.parseint('0', 10)), extraPorts: [Token.asNumber(Fn.parseint('0', 10))] });
    expect(onlyResource(json, 'aws_instance').ami).toBe('${lower("AMI")}');
  });
});
