/**
 * The tfplugin6.Provider gRPC service: decodes each request's values against
 * the schema, calls the provider definition, and encodes the answer.
 *
 * Failures are answered as error diagnostics rather than gRPC errors, because
 * Terraform shows diagnostics to the user with their text and attribute path,
 * while a gRPC error only says that the plugin failed.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeMsgpack, encodeMsgpack } from './cty';
import { decodeJson } from './cty-json';
import { CtyObject, CtyType, CtyValue, UNKNOWN, isPlainObject } from './cty-types';
import { Diagnostic, diagnosticFromError, diagnosticsToProto, error, pathToProto } from './diagnostics';
import { CallContext, PlanRequest, PlanResult, ProviderDefinition, ResourceType } from './provider';
import { Schema, impliedType, nullWriteOnly, schemaToProto } from './schema';

/** tfplugin6.DynamicValue as proto-loader hands it over. */
interface WireDynamicValue {
  msgpack?: Buffer;
  json?: Buffer;
}

/** Reads a DynamicValue in whichever encoding it came; an empty one is null. */
export function decodeDynamicValue(dv: WireDynamicValue | null | undefined, type: CtyType): CtyValue {
  if (dv?.msgpack && dv.msgpack.length > 0) return decodeMsgpack(dv.msgpack, type);
  if (dv?.json && dv.json.length > 0) return decodeJson(dv.json, type);
  return null;
}

/** Writes a value as a msgpack DynamicValue, the encoding Terraform prefers. */
export function encodeDynamicValue(value: CtyValue, type: CtyType): WireDynamicValue {
  return { msgpack: Buffer.from(encodeMsgpack(value, type)) };
}

function asObjectOrNull(value: CtyValue): CtyObject | null {
  if (value === null) return null;
  if (!isPlainObject(value)) throw new Error('expected an object value');
  return value;
}

/**
 * The default plan: take Terraform's proposal, and on create mark computed
 * attributes that the configuration leaves unset as "known after apply".
 */
export function defaultPlan(schema: Schema, request: PlanRequest): PlanResult {
  if (request.proposed === null) return { planned: null };
  const planned: CtyObject = { ...request.proposed };
  if (request.prior === null) {
    for (const [name, attribute] of Object.entries(schema.block.attributes ?? {})) {
      if (attribute.computed && request.config?.[name] === null && planned[name] === null) planned[name] = UNKNOWN;
    }
  }
  return { planned };
}

/** Cancels in-flight work when Terraform calls StopProvider. */
export class StopSignal {
  private readonly controller = new AbortController();
  /** The context handed to provider code. */
  readonly context: CallContext = { signal: this.controller.signal };
  /** Aborts the signal; in-flight calls see it and stop. */
  stop(): void {
    this.controller.abort(new Error('Terraform asked the provider to stop'));
  }
}

type Handler = (request: any) => Promise<object>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Wraps an async handler as a gRPC unary handler that turns exceptions into diagnostics. */
function unary(rpc: string, handler: Handler): grpc.handleUnaryCall<unknown, object> {
  return (call, callback) => {
    handler(call.request).then(
      (response) => callback(null, response),
      (thrown: unknown) => callback(null, { diagnostics: diagnosticsToProto([diagnosticFromError(`${rpc} failed`, thrown)]) }),
    );
  };
}

const CAPABILITIES = {
  // Destroy goes through PlanResourceChange too, so a provider can refuse or warn.
  plan_destroy: true,
  get_provider_schema_optional: false,
  move_resource_state: false,
};

/** Builds the handlers of the tfplugin6.Provider service for one provider definition. */
export function providerService(provider: ProviderDefinition, stop: StopSignal): grpc.UntypedServiceImplementation {
  const ctx = stop.context;
  const providerType = impliedType(provider.schema.block);
  const dataSources = provider.dataSources ?? {};

  const resource = (typeName: string): ResourceType => {
    const found = provider.resources[typeName];
    if (!found) throw new Error(`this provider has no resource type "${typeName}"`);
    return found;
  };
  const dataSource = (typeName: string) => {
    const found = dataSources[typeName];
    if (!found) throw new Error(`this provider has no data source "${typeName}"`);
    return found;
  };
  const typeOf = (schema: Schema) => impliedType(schema.block);
  const diags = (list: Diagnostic[] | undefined) => diagnosticsToProto(list ?? []);

  return {
    GetMetadata: unary('GetMetadata', async () => ({
      server_capabilities: CAPABILITIES,
      resources: Object.keys(provider.resources).map((type_name) => ({ type_name })),
      data_sources: Object.keys(dataSources).map((type_name) => ({ type_name })),
      functions: [],
      ephemeral_resources: [],
      diagnostics: [],
    })),

    GetProviderSchema: unary('GetProviderSchema', async () => ({
      provider: schemaToProto(provider.schema),
      resource_schemas: Object.fromEntries(
        Object.entries(provider.resources).map(([name, r]) => [name, schemaToProto(r.schema)]),
      ),
      data_source_schemas: Object.fromEntries(
        Object.entries(dataSources).map(([name, d]) => [name, schemaToProto(d.schema)]),
      ),
      functions: {},
      ephemeral_resource_schemas: {},
      server_capabilities: CAPABILITIES,
      diagnostics: [],
    })),

    GetFunctions: unary('GetFunctions', async () => ({ functions: {}, diagnostics: [] })),

    ValidateProviderConfig: unary('ValidateProviderConfig', async (req) => {
      const config = asObjectOrNull(decodeDynamicValue(req.config, providerType));
      return { diagnostics: diags(config && provider.validate ? await provider.validate(config, ctx) : []) };
    }),

    ValidateResourceConfig: unary('ValidateResourceConfig', async (req) => {
      const r = resource(req.type_name);
      const config = asObjectOrNull(decodeDynamicValue(req.config, typeOf(r.schema)));
      return { diagnostics: diags(config && r.validate ? await r.validate(config, ctx) : []) };
    }),

    ValidateDataResourceConfig: unary('ValidateDataResourceConfig', async (req) => {
      const d = dataSource(req.type_name);
      const config = asObjectOrNull(decodeDynamicValue(req.config, typeOf(d.schema)));
      return { diagnostics: diags(config && d.validate ? await d.validate(config, ctx) : []) };
    }),

    ConfigureProvider: unary('ConfigureProvider', async (req) => {
      const config = asObjectOrNull(decodeDynamicValue(req.config, providerType));
      const result = config && provider.configure ? await provider.configure(config, req.terraform_version, ctx) : [];
      return { diagnostics: diags(result) };
    }),

    UpgradeResourceState: unary('UpgradeResourceState', async (req) => {
      const r = resource(req.type_name);
      const type = typeOf(r.schema);
      const json: string | null = req.raw_state?.json?.length ? req.raw_state.json.toString('utf8') : null;
      if (r.upgradeState) {
        const result = await r.upgradeState({ version: Number(req.version), json }, ctx);
        return { upgraded_state: encodeDynamicValue(result.state, type), diagnostics: diags(result.diagnostics) };
      }
      if (json === null) {
        return { diagnostics: diags([error('Cannot upgrade state', 'The stored state has no JSON form (flatmap state is not supported).')]) };
      }
      return { upgraded_state: encodeDynamicValue(decodeJson(json, type), type), diagnostics: [] };
    }),

    ReadResource: unary('ReadResource', async (req) => {
      const r = resource(req.type_name);
      const type = typeOf(r.schema);
      const current = asObjectOrNull(decodeDynamicValue(req.current_state, type));
      if (!r.read || current === null) {
        return { new_state: req.current_state, private: req.private, diagnostics: [] };
      }
      const result = await r.read({ current: nullWriteOnly(r.schema.block, current), private: req.private }, ctx);
      return {
        new_state: encodeDynamicValue(nullWriteOnly(r.schema.block, result.newState), type),
        private: result.private ?? req.private,
        diagnostics: diags(result.diagnostics),
      };
    }),

    PlanResourceChange: unary('PlanResourceChange', async (req) => {
      const r = resource(req.type_name);
      const type = typeOf(r.schema);
      const request: PlanRequest = {
        // Write-only values live only in config: plan and state never carry them.
        prior: nullWriteOnly(r.schema.block, asObjectOrNull(decodeDynamicValue(req.prior_state, type))),
        proposed: nullWriteOnly(r.schema.block, asObjectOrNull(decodeDynamicValue(req.proposed_new_state, type))),
        config: asObjectOrNull(decodeDynamicValue(req.config, type)),
        priorPrivate: req.prior_private,
      };
      const result = r.plan ? await r.plan(request, ctx) : defaultPlan(r.schema, request);
      return {
        planned_state: encodeDynamicValue(nullWriteOnly(r.schema.block, result.planned), type),
        requires_replace: (result.requiresReplace ?? []).map(pathToProto),
        planned_private: result.plannedPrivate ?? req.prior_private,
        diagnostics: diags(result.diagnostics),
      };
    }),

    ApplyResourceChange: unary('ApplyResourceChange', async (req) => {
      const r = resource(req.type_name);
      const type = typeOf(r.schema);
      const result = await r.apply(
        {
          prior: nullWriteOnly(r.schema.block, asObjectOrNull(decodeDynamicValue(req.prior_state, type))),
          planned: nullWriteOnly(r.schema.block, asObjectOrNull(decodeDynamicValue(req.planned_state, type))),
          config: asObjectOrNull(decodeDynamicValue(req.config, type)),
          plannedPrivate: req.planned_private,
        },
        ctx,
      );
      return {
        new_state: encodeDynamicValue(nullWriteOnly(r.schema.block, result.newState), type),
        private: result.private ?? Buffer.alloc(0),
        diagnostics: diags(result.diagnostics),
      };
    }),

    ImportResourceState: unary('ImportResourceState', async (req) => {
      const r = resource(req.type_name);
      if (!r.importState) {
        return { diagnostics: diags([error('Import not supported', `Resources of type ${req.type_name} cannot be imported.`)]) };
      }
      const type = typeOf(r.schema);
      const result = await r.importState(req.id, ctx);
      return {
        imported_resources: result.imported.map((item) => ({
          type_name: req.type_name,
          state: encodeDynamicValue(nullWriteOnly(r.schema.block, item.state), type),
          private: item.private ?? Buffer.alloc(0),
        })),
        diagnostics: diags(result.diagnostics),
      };
    }),

    ReadDataSource: unary('ReadDataSource', async (req) => {
      const d = dataSource(req.type_name);
      const type = typeOf(d.schema);
      const config = asObjectOrNull(decodeDynamicValue(req.config, type));
      if (config === null) throw new Error('data source configuration is null');
      const result = await d.read(config, ctx);
      return { state: encodeDynamicValue(result.state, type), diagnostics: diags(result.diagnostics) };
    }),

    StopProvider: unary('StopProvider', async () => {
      stop.stop();
      return { Error: '' };
    }),
  };
}
