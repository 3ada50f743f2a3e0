/**
 * cty types and values as this provider holds them in memory.
 *
 * A cty type is kept in its JSON form (the same JSON Terraform puts in a
 * schema attribute's `type` bytes), so it needs no conversion on the wire.
 * Values are plain JavaScript where that loses nothing, and small classes
 * where it would (unknown values, dynamic values, numbers JavaScript cannot hold).
 */

/** A cty type in its JSON form: "string", ["list","number"], ["object",{...}], ... */
export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | ['list', CtyType]
  | ['set', CtyType]
  | ['map', CtyType]
  | ['object', { [attribute: string]: CtyType }]
  // Type constraints may name optional attributes; values never depend on it.
  | ['object', { [attribute: string]: CtyType }, string[]]
  | ['tuple', CtyType[]];

/** Builders that read better than JSON literals in schemas. */
export const t = {
  string: 'string' as CtyType,
  number: 'number' as CtyType,
  bool: 'bool' as CtyType,
  dynamic: 'dynamic' as CtyType,
  list: (element: CtyType): CtyType => ['list', element],
  set: (element: CtyType): CtyType => ['set', element],
  map: (element: CtyType): CtyType => ['map', element],
  object: (attributes: { [name: string]: CtyType }): CtyType => ['object', attributes],
  tuple: (elements: CtyType[]): CtyType => ['tuple', elements],
};

/**
 * An unknown value ("known after apply"). Terraform may attach refinements
 * (for example "not null", or a string prefix) as msgpack extension 12; they are
 * kept as raw bytes so that a value passed back to Terraform is unchanged.
 */
export class CtyUnknown {
  constructor(
    /** msgpack extension type it arrived as (0 plain, 12 refined), if any. */
    readonly extType = 0,
    /** raw extension payload, kept only to send it back unchanged. */
    readonly extData: Uint8Array = new Uint8Array([0]),
  ) {}
}

/** The one plain unknown value; compare with `isUnknown`, not `===`, as refined unknowns are other instances. */
export const UNKNOWN: CtyUnknown = Object.freeze(new CtyUnknown());

/** A number that a JavaScript number or bigint cannot hold exactly, kept as decimal text. */
export class CtyBigNumber {
  constructor(readonly text: string) {}
  /** The nearest JavaScript number, for code that can live with rounding. */
  toNumber(): number {
    return Number(this.text);
  }
}

/** A value of a `dynamic` slot: the concrete type travels with the value. */
export class CtyDynamic {
  constructor(
    readonly type: CtyType,
    readonly value: CtyValue,
  ) {}
}

/** Any cty value. Objects and maps are plain objects; lists, sets and tuples are arrays. */
export type CtyValue =
  | null
  | CtyUnknown
  | string
  | boolean
  | number
  | bigint
  | CtyBigNumber
  | CtyDynamic
  | CtyValue[]
  | CtyObject;

/** An object or map value. */
export interface CtyObject {
  [key: string]: CtyValue;
}

/** Whether the value is unknown (plain or refined). Only the top level is checked. */
export function isUnknown(value: unknown): value is CtyUnknown {
  return value instanceof CtyUnknown;
}

/** Whether the value, or anything inside it, is unknown. */
export function containsUnknown(value: CtyValue): boolean {
  if (isUnknown(value)) return true;
  if (value instanceof CtyDynamic) return containsUnknown(value.value);
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (isPlainObject(value)) return Object.values(value).some(containsUnknown);
  return false;
}

/** A plain object (object or map value), as opposed to the classes above or arrays. */
export function isPlainObject(value: unknown): value is CtyObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The type JSON text, as put into schema `type` bytes and dynamic values. */
export function typeToJson(type: CtyType): string {
  return JSON.stringify(type);
}

/** Parses and checks a type from its JSON form. Throws on anything that is not a cty type. */
export function typeFromJson(json: string | Uint8Array): CtyType {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8');
  const parsed: unknown = JSON.parse(text);
  return checkType(parsed);
}

function checkType(raw: unknown): CtyType {
  if (raw === 'string' || raw === 'number' || raw === 'bool' || raw === 'dynamic') return raw;
  if (Array.isArray(raw)) {
    const [kind, arg, optional] = raw as unknown[];
    switch (kind) {
      case 'list':
      case 'set':
      case 'map':
        return [kind, checkType(arg)];
      case 'tuple':
        if (Array.isArray(arg)) return ['tuple', arg.map(checkType)];
        break;
      case 'object':
        if (isPlainObject(arg)) {
          const attributes = Object.fromEntries(
            Object.entries(arg).map(([name, sub]) => [name, checkType(sub)]),
          );
          return Array.isArray(optional) ? ['object', attributes, optional.map(String)] : ['object', attributes];
        }
        break;
    }
  }
  throw new Error(`not a cty type: ${JSON.stringify(raw)}`);
}
