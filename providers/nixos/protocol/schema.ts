/**
 * Schemas as provider code declares them, their wire form
 * (tfplugin6.Schema), and the cty object type a schema implies.
 */
import { CtyType, isPlainObject, typeToJson } from './cty-types';

/** One attribute of a block. */
export interface AttributeSchema {
  type: CtyType;
  description?: string;
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
  /** Never stored in state or plan (Terraform 1.11+): the provider sees it only in config. */
  writeOnly?: boolean;
  deprecated?: boolean;
}

/** A nested block such as `health_check { ... }`. */
export interface NestedBlockSchema {
  nesting: 'single' | 'group' | 'list' | 'set' | 'map';
  block: BlockSchema;
  minItems?: number;
  maxItems?: number;
}

/** A configuration block: the body of a provider, resource or data source. */
export interface BlockSchema {
  attributes?: { [name: string]: AttributeSchema };
  blocks?: { [typeName: string]: NestedBlockSchema };
  description?: string;
  deprecated?: boolean;
}

/** A versioned schema; bump `version` when stored state must be upgraded. */
export interface Schema {
  version?: number;
  block: BlockSchema;
}

/** The object type of values that conform to a block. */
export function impliedType(block: BlockSchema): CtyType {
  const attributes: { [name: string]: CtyType } = {};
  for (const [name, attribute] of Object.entries(block.attributes ?? {})) attributes[name] = attribute.type;
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const inner = impliedType(nested.block);
    switch (nested.nesting) {
      case 'single':
      case 'group':
        attributes[name] = inner;
        break;
      case 'list':
        attributes[name] = ['list', inner];
        break;
      case 'set':
        attributes[name] = ['set', inner];
        break;
      case 'map':
        attributes[name] = ['map', inner];
        break;
    }
  }
  return ['object', attributes];
}

/** Wire form of a schema. */
export function schemaToProto(schema: Schema): object {
  return { version: schema.version ?? 0, block: blockToProto(schema.block, schema.version ?? 0) };
}

function blockToProto(block: BlockSchema, version: number): object {
  return {
    version,
    description: block.description ?? '',
    description_kind: 'PLAIN',
    deprecated: block.deprecated ?? false,
    attributes: Object.entries(block.attributes ?? {}).map(([name, a]) => ({
      name,
      type: Buffer.from(typeToJson(a.type)),
      description: a.description ?? '',
      description_kind: 'PLAIN',
      required: a.required ?? false,
      optional: a.optional ?? false,
      computed: a.computed ?? false,
      sensitive: a.sensitive ?? false,
      write_only: a.writeOnly ?? false,
      deprecated: a.deprecated ?? false,
    })),
    block_types: Object.entries(block.blocks ?? {}).map(([typeName, nested]) => ({
      type_name: typeName,
      block: blockToProto(nested.block, version),
      nesting: nested.nesting.toUpperCase(),
      min_items: nested.minItems ?? 0,
      max_items: nested.maxItems ?? 0,
    })),
  };
}

/** True when a block or any block nested in it has a write-only attribute. */
export function hasWriteOnly(block: BlockSchema): boolean {
  return (
    Object.values(block.attributes ?? {}).some((a) => a.writeOnly) ||
    Object.values(block.blocks ?? {}).some((nested) => hasWriteOnly(nested.block))
  );
}

/**
 * The value with every write-only attribute set to null, in nested blocks too.
 * Terraform refuses a plan, new state or read result that carries a write-only value.
 */
export function nullWriteOnly<V>(block: BlockSchema, value: V): V {
  if (!isPlainObject(value) || !hasWriteOnly(block)) return value;
  const out: { [name: string]: unknown } = { ...value };
  for (const [name, a] of Object.entries(block.attributes ?? {})) if (a.writeOnly && name in out) out[name] = null;
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const inner = out[name];
    if (!hasWriteOnly(nested.block)) continue;
    if (Array.isArray(inner)) out[name] = inner.map((v) => nullWriteOnly(nested.block, v));
    else if (!isPlainObject(inner)) continue; // null or unknown
    else if (nested.nesting === 'single' || nested.nesting === 'group') out[name] = nullWriteOnly(nested.block, inner);
    else if (nested.nesting === 'map') {
      out[name] = Object.fromEntries(Object.entries(inner).map(([k, v]) => [k, nullWriteOnly(nested.block, v)]));
    }
  }
  return out as V;
}
