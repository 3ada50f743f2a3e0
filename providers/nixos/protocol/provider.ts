/**
 * What a provider written on this protocol layer implements. Values arrive
 * decoded against the schema (objects carry every attribute) and are encoded
 * back by the layer; provider code never sees msgpack or gRPC.
 */
import { CtyObject } from './cty-types';
import { AttributePath, Diagnostic } from './diagnostics';
import { Schema } from './schema';

/** Handed to every call. */
export interface CallContext {
  /** Aborted when Terraform calls StopProvider (the user pressed Ctrl-C): stop in-flight work. */
  signal: AbortSignal;
}

/** Result of the calls that only validate or configure. */
export type Diagnostics = Diagnostic[];

export interface PlanRequest {
  /** null when the resource is being created. */
  prior: CtyObject | null;
  /** Terraform's proposal: config merged with prior computed values. null when destroying. */
  proposed: CtyObject | null;
  config: CtyObject | null;
  priorPrivate: Buffer;
}

export interface PlanResult {
  planned: CtyObject | null;
  requiresReplace?: AttributePath[];
  plannedPrivate?: Buffer;
  diagnostics?: Diagnostics;
}

export interface ApplyRequest {
  prior: CtyObject | null;
  /** null when the resource is being destroyed. */
  planned: CtyObject | null;
  config: CtyObject | null;
  plannedPrivate: Buffer;
}

export interface ApplyResult {
  /** The new state; null once destroyed. Must keep every value the plan knew. */
  newState: CtyObject | null;
  private?: Buffer;
  diagnostics?: Diagnostics;
}

export interface ReadRequest {
  current: CtyObject;
  private: Buffer;
}

export interface ReadResult {
  /** null when the object is gone (Terraform then plans to create it again). */
  newState: CtyObject | null;
  private?: Buffer;
  diagnostics?: Diagnostics;
}

export interface ImportResult {
  /** Usually one object; its state is then refreshed with `read`. */
  imported: Array<{ state: CtyObject; private?: Buffer }>;
  diagnostics?: Diagnostics;
}

export interface UpgradeRequest {
  /** Schema version the stored state was written with. */
  version: number;
  /** The stored state as JSON text (null for pre-0.12 flatmap state). */
  json: string | null;
}

/** A managed resource type. */
export interface ResourceType {
  schema: Schema;
  validate?(config: CtyObject, ctx: CallContext): Promise<Diagnostics> | Diagnostics;
  /** Default: plan the proposal, with unset computed attributes "known after apply" on create. */
  plan?(request: PlanRequest, ctx: CallContext): Promise<PlanResult>;
  apply(request: ApplyRequest, ctx: CallContext): Promise<ApplyResult>;
  /** Default: the stored state is the truth. */
  read?(request: ReadRequest, ctx: CallContext): Promise<ReadResult>;
  /** Default: import is refused with an error diagnostic. */
  importState?(id: string, ctx: CallContext): Promise<ImportResult>;
  /**
   * Default: the stored JSON is read with the current schema. Return the state
   * as a value of the current schema's type.
   */
  upgradeState?(request: UpgradeRequest, ctx: CallContext): Promise<{ state: CtyObject | null; diagnostics?: Diagnostics }>;
}

/** A data source type. */
export interface DataSourceType {
  schema: Schema;
  validate?(config: CtyObject, ctx: CallContext): Promise<Diagnostics> | Diagnostics;
  read(config: CtyObject, ctx: CallContext): Promise<{ state: CtyObject | null; diagnostics?: Diagnostics }>;
}

/** A whole provider. */
export interface ProviderDefinition {
  schema: Schema;
  resources: { [typeName: string]: ResourceType };
  dataSources?: { [typeName: string]: DataSourceType };
  validate?(config: CtyObject, ctx: CallContext): Promise<Diagnostics> | Diagnostics;
  /** Called once before any plan, apply or read; config may contain unknown values. */
  configure?(config: CtyObject, terraformVersion: string, ctx: CallContext): Promise<Diagnostics> | Diagnostics;
}
