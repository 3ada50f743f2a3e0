/**
 * Logical machines and their placement. `defineMachines` describes what each machine runs
 * (flake attribute and settings) once; `placeOnHosts` puts them on machines that exist,
 * `placeOnEc2` on new EC2 instances. Each placement creates one construct per machine,
 * with the machine's name as its id, so the same definitions give the same ids in every
 * stack.
 */
import { Lazy } from 'cdktf';
import { Construct } from 'constructs';
import { NixosEc2Machine, NixosEc2MachineProps } from './nixos-ec2-machine';
import { NixosConnection, NixosSystem, NixosSystemOptions } from './nixos-system';
import { SpecialArgs } from './provider/system-resource';

/** Where a machine ended up, as the other machines see it. */
export interface PlacedMachine {
  /** The machine's name. */
  readonly name: string;
  /** The address other machines reach it at (a token on EC2: its private IP). */
  readonly address: string;
  /** Facts the placement gives about it, e.g. `{ servicePort: 8080 }`. */
  readonly facts: { readonly [key: string]: string | number };
}

/** Every machine of a set, by name, after placement. */
export type PlacedMachines<N extends string> = { readonly [K in N]: PlacedMachine };

/** One logical machine: what it runs and how it is deployed, not where. */
export interface MachineSpec<N extends string = string> extends Omit<NixosSystemOptions, 'specialArgs'> {
  /**
   * Special args; a function of where the machines were placed gives one machine
   * another's address (`(m) => ({ db: { host: m.db.address } })`).
   * @default none
   */
  readonly specialArgs?: SpecialArgs | ((machines: PlacedMachines<N>) => SpecialArgs);
}

/** A set of logical machines by name. */
export type MachineSet<N extends string> = { readonly [K in N]: MachineSpec<N> };

const MACHINE_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** Defines the logical machines, checking their names (they become construct ids). */
export function defineMachines<N extends string>(machines: { readonly [K in N]: MachineSpec<N> }): MachineSet<N> {
  for (const name of Object.keys(machines)) {
    if (!MACHINE_NAME.test(name)) {
      throw new Error(`defineMachines: machine name ${JSON.stringify(name)} is not usable as an id. Start with a letter; use letters, digits, "_" and "-".`);
    }
  }
  return machines;
}

/**
 * Settings a placement adds to the machines it places (a binary cache near them, checks
 * that need their address, …). They override the machine's own, except `healthChecks`,
 * which are added to the machine's.
 */
export type PlacementSettings = Omit<NixosSystemOptions, 'flake' | 'storePath' | 'specialArgs'>;

/** Facts a placement gives about a machine, for the other machines' special args. */
export type MachineFacts = { readonly [key: string]: string | number };

/** An existing host for one machine. */
export interface HostPlacement extends NixosConnection, PlacementSettings {
  /** The address other machines use to reach this one. @default host */
  readonly peerAddress?: string;
  /** Facts for the other machines' special args. @default {} */
  readonly facts?: MachineFacts;
}

/** A machine's settings with a placement's over them, as NixosSystem options. */
function merged<N extends string>(spec: MachineSpec<N>, settings: PlacementSettings, placed: PlacedMachines<N>): NixosSystemOptions {
  const { specialArgs, ...own } = spec;
  const healthChecks = [...(own.healthChecks ?? []), ...(settings.healthChecks ?? [])];
  return {
    ...own,
    ...settings,
    healthChecks: healthChecks.length > 0 ? healthChecks : undefined,
    specialArgs: typeof specialArgs === 'function' ? Lazy.anyValue({ produce: () => specialArgs(placed) }) : specialArgs,
  };
}

function checkPlacements(where: string, names: readonly string[], given: object): void {
  const absent = names.filter((n) => !(n in given));
  if (absent.length > 0) throw new Error(`${where}: no placement for machine(s) ${absent.join(', ')}. Give one for every machine of the set.`);
  const unknown = Object.keys(given).filter((n) => !names.includes(n));
  if (unknown.length > 0) throw new Error(`${where}: placement(s) for ${unknown.join(', ')}, which the machine set does not define. Check the names (${names.join(', ')}).`);
}

/** Puts every machine on its existing host: one NixosSystem per machine, id = name. */
export function placeOnHosts<N extends string>(scope: Construct, machines: MachineSet<N>, hosts: { readonly [K in N]: HostPlacement }): { [K in N]: NixosSystem } {
  const names = Object.keys(machines) as N[];
  checkPlacements(`placeOnHosts(${scope.node.path})`, names, hosts);
  const placed = Object.fromEntries(
    names.map((n) => [n, { name: n, address: hosts[n].peerAddress ?? hosts[n].host, facts: hosts[n].facts ?? {} }]),
  ) as unknown as PlacedMachines<N>;
  const systems = {} as { [K in N]: NixosSystem };
  for (const name of names) {
    const { peerAddress: _p, facts: _f, host, port, user, privateKeyFile, hostKey, bastion, ...settings } = hosts[name];
    systems[name] = new NixosSystem(scope, name, { ...merged(machines[name], settings, placed), host, port, user, privateKeyFile, hostKey, bastion });
  }
  return systems;
}

/** The EC2 settings of a placement: the instance props that are not the machine's own. */
export type Ec2Settings = Omit<NixosEc2MachineProps, keyof NixosSystemOptions>;

/** One machine's EC2 settings over the placement's defaults. */
export interface Ec2MachinePlacement extends Partial<Ec2Settings>, PlacementSettings {
  /** Facts for the other machines' special args. @default the placement's facts */
  readonly facts?: MachineFacts;
}

/** How to put a set of machines on EC2. */
export interface Ec2Placement<N extends string> {
  /** Instance settings every machine shares (AMI, public key, …). */
  readonly defaults: Ec2Settings;
  /** System settings every machine gets (a binary cache, …). @default none */
  readonly settings?: PlacementSettings;
  /** Per-machine settings over the defaults (e.g. a bigger instanceType). @default none */
  readonly machines?: { readonly [K in N]?: Ec2MachinePlacement };
  /** Facts every machine gets, e.g. the port its service listens on. @default {} */
  readonly facts?: MachineFacts;
}

/**
 * Puts every machine on a new EC2 instance: one NixosEc2Machine per machine, id = name.
 * Other machines see each one at its private IP; special args that depend on other
 * machines are produced at synth, once every instance exists.
 */
export function placeOnEc2<N extends string>(scope: Construct, machines: MachineSet<N>, placement: Ec2Placement<N>): { [K in N]: NixosEc2Machine } {
  const names = Object.keys(machines) as N[];
  const unknown = Object.keys(placement.machines ?? {}).filter((n) => !(names as string[]).includes(n));
  if (unknown.length > 0) throw new Error(`placeOnEc2(${scope.node.path}): settings for ${unknown.join(', ')}, which the machine set does not define. Check the names (${names.join(', ')}).`);
  const placed = {} as { [K in N]: PlacedMachine };
  const result = {} as { [K in N]: NixosEc2Machine };
  for (const name of names) {
    const own: Ec2MachinePlacement = placement.machines?.[name] ?? {};
    const { facts, ami, sshPublicKey, privateKeyFile, hostKey, instanceType, address, subnetId, vpcId, sshCidrBlocks, extraPorts, extraPortsCidrBlocks, rootVolumeSizeGib, user, bastion, tags, provider, ...settings } = own;
    const instance = { ami, sshPublicKey, privateKeyFile, hostKey, instanceType, address, subnetId, vpcId, sshCidrBlocks, extraPorts, extraPortsCidrBlocks, rootVolumeSizeGib, user, bastion, tags, provider };
    const defined = Object.fromEntries(Object.entries(instance).filter(([, v]) => v !== undefined)) as Partial<Ec2Settings>;
    result[name] = new NixosEc2Machine(scope, name, {
      ...placement.defaults,
      ...defined,
      ...merged(machines[name], { ...placement.settings, ...settings, healthChecks: [...(placement.settings?.healthChecks ?? []), ...(settings.healthChecks ?? [])] }, placed),
    });
    placed[name] = { name, address: result[name].privateIp, facts: { ...placement.facts, ...facts } };
  }
  return result;
}
