/**
 * The schema-driven cty codec for msgpack, the encoding Terraform uses for
 * every value it exchanges with a provider (tfplugin6.DynamicValue.msgpack).
 *
 * Wire rules (cty's msgpack format):
 * - null is msgpack nil; an unknown value is any msgpack extension (type 0
 *   plain, type 12 with refinements): every extension is read as unknown.
 * - numbers are msgpack integers or floats, or decimal strings when neither is exact.
 * - objects are maps carrying every attribute of the object type.
 * - a value of type `dynamic` is a 2-element array: [type JSON as bytes, value].
 */
import { Decoder, Encoder, ExtData, ExtensionCodec } from '@msgpack/msgpack';
import {
  CtyBigNumber,
  CtyDynamic,
  CtyObject,
  CtyType,
  CtyUnknown,
  CtyValue,
  UNKNOWN,
  isPlainObject,
  isUnknown,
  typeFromJson,
  typeToJson,
} from './cty-types';
import { fromBigInt, numberToMsgpack, parseNumberText } from './cty-number';
import { AttributePath, PathError } from './diagnostics';

export * from './cty-types';

// msgpack's timestamp extension (-1) must not turn into a Date: override it so
// that every extension type arrives as raw ExtData.
const extensionCodec = new ExtensionCodec();
extensionCodec.register({ type: -1, encode: () => null, decode: (data, type) => new ExtData(type, data) });

const decoder = new Decoder({ extensionCodec, useBigInt64: true });
const encoder = new Encoder({ extensionCodec, useBigInt64: true, ignoreUndefined: false });

/** Decodes msgpack bytes into a value of the given type. Throws PathError on a mismatch. */
export function decodeMsgpack(bytes: Uint8Array, type: CtyType): CtyValue {
  return fromWire(decoder.decode(bytes), type, []);
}

/** Encodes a value of the given type as msgpack. Throws PathError if the value does not fit the type. */
export function encodeMsgpack(value: CtyValue, type: CtyType): Uint8Array {
  return encoder.encode(toWire(value, type, []));
}

function fail(message: string, path: AttributePath): never {
  throw new PathError(message, path);
}

/** Turns what @msgpack/msgpack decoded into a cty value, guided by the type. */
function fromWire(raw: unknown, type: CtyType, path: AttributePath): CtyValue {
  if (raw instanceof ExtData) {
    const data = typeof raw.data === 'function' ? raw.data(0) : raw.data;
    const plain = raw.type === 0 && data.length <= 1 && (data.length === 0 || data[0] === 0);
    return plain ? UNKNOWN : new CtyUnknown(raw.type, data);
  }
  if (raw === null || raw === undefined) return null;
  if (type === 'dynamic') {
    if (!Array.isArray(raw) || raw.length !== 2) fail('a dynamic value must be a [type, value] pair', path);
    const [typeBytes, inner] = raw as [unknown, unknown];
    if (!(typeBytes instanceof Uint8Array) && typeof typeBytes !== 'string') fail('dynamic value lacks its type', path);
    const concrete = typeFromJson(typeBytes as Uint8Array | string);
    return new CtyDynamic(concrete, fromWire(inner, concrete, path));
  }
  if (type === 'string') {
    if (typeof raw !== 'string') fail(`expected a string, got ${describe(raw)}`, path);
    return raw;
  }
  if (type === 'bool') {
    if (typeof raw !== 'boolean') fail(`expected a bool, got ${describe(raw)}`, path);
    return raw;
  }
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return fromBigInt(raw);
    if (typeof raw === 'string') {
      try {
        return parseNumberText(raw);
      } catch (e) {
        fail((e as Error).message, path);
      }
    }
    fail(`expected a number, got ${describe(raw)}`, path);
  }
  const [kind, arg] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(raw)) fail(`expected a ${kind}, got ${describe(raw)}`, path);
      return raw.map((element, i) => fromWire(element, arg, [...path, i]));
    case 'tuple': {
      if (!Array.isArray(raw) || raw.length !== arg.length) fail(`expected a tuple of ${arg.length}`, path);
      return raw.map((element, i) => fromWire(element, arg[i], [...path, i]));
    }
    case 'map': {
      if (!isPlainObject(raw)) fail(`expected a map, got ${describe(raw)}`, path);
      return Object.fromEntries(
        Object.entries(raw).map(([key, element]) => [key, fromWire(element, arg, [...path, { key }])]),
      );
    }
    case 'object': {
      if (!isPlainObject(raw)) fail(`expected an object, got ${describe(raw)}`, path);
      for (const key of Object.keys(raw)) {
        if (!(key in arg)) fail(`unsupported attribute "${key}"`, path);
      }
      // An absent attribute is read as null, so callers always see every attribute.
      return Object.fromEntries(
        Object.entries(arg).map(([name, attrType]) => [name, fromWire(raw[name], attrType, [...path, name])]),
      );
    }
  }
}

/** Turns a cty value into what @msgpack/msgpack should encode, guided by the type. */
function toWire(value: CtyValue | undefined, type: CtyType, path: AttributePath): unknown {
  if (value === null || value === undefined) return null;
  if (isUnknown(value)) return new ExtData(value.extType, value.extData);
  if (type === 'dynamic') {
    const dynamic = value instanceof CtyDynamic ? value : new CtyDynamic(inferType(value, path), value);
    // A null or unknown dynamic value is written bare, without its type.
    if (dynamic.value === null || isUnknown(dynamic.value)) return toWire(dynamic.value, dynamic.type, path);
    return [Buffer.from(typeToJson(dynamic.type)), toWire(dynamic.value, dynamic.type, path)];
  }
  if (value instanceof CtyDynamic) fail('a dynamic value where a concrete type is expected', path);
  if (type === 'string') {
    if (typeof value !== 'string') fail(`expected a string, got ${describe(value)}`, path);
    return value;
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') fail(`expected a bool, got ${describe(value)}`, path);
    return value;
  }
  if (type === 'number') {
    if (typeof value !== 'number' && typeof value !== 'bigint' && !(value instanceof CtyBigNumber)) {
      fail(`expected a number, got ${describe(value)}`, path);
    }
    try {
      return numberToMsgpack(value);
    } catch (e) {
      fail((e as Error).message, path);
    }
  }
  const [kind, arg] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(value)) fail(`expected a ${kind}, got ${describe(value)}`, path);
      return value.map((element, i) => toWire(element, arg, [...path, i]));
    case 'tuple':
      if (!Array.isArray(value) || value.length !== arg.length) fail(`expected a tuple of ${arg.length}`, path);
      return value.map((element, i) => toWire(element, arg[i], [...path, i]));
    case 'map': {
      if (!isPlainObject(value)) fail(`expected a map, got ${describe(value)}`, path);
      const out: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(value)) setData(out, key, toWire(element, arg, [...path, { key }]));
      return out;
    }
    case 'object': {
      if (!isPlainObject(value)) fail(`expected an object, got ${describe(value)}`, path);
      for (const key of Object.keys(value)) {
        if (!(key in arg)) fail(`unsupported attribute "${key}"`, path);
      }
      // Terraform requires every attribute of the object type to be present.
      const out: Record<string, unknown> = {};
      for (const [name, attrType] of Object.entries(arg)) setData(out, name, toWire(value[name], attrType, [...path, name]));
      return out;
    }
  }
}

/**
 * The type of a plain JavaScript value put into a `dynamic` slot. Arrays become
 * tuples and objects become objects, as cty's own type inference would make them.
 */
export function inferType(value: CtyValue, path: AttributePath = []): CtyType {
  if (value === null || isUnknown(value)) return 'dynamic';
  if (value instanceof CtyDynamic) return value.type;
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number' || typeof value === 'bigint' || value instanceof CtyBigNumber) return 'number';
  if (Array.isArray(value)) return ['tuple', value.map((v, i) => inferType(v, [...path, i]))];
  if (isPlainObject(value)) {
    return ['object', Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inferType(v, [...path, k])]))];
  }
  fail(`cannot infer a cty type for ${describe(value)}`, path);
}

/** Sets a property as data, so that a key named __proto__ cannot change the prototype. */
function setData(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(raw: unknown): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'an array';
  if (raw instanceof Uint8Array) return 'bytes';
  return typeof raw === 'object' ? 'an object' : `${typeof raw} ${JSON.stringify(String(raw)).slice(0, 40)}`;
}

/** Reads an object value, for code that knows the type is an object. */
export function asObject(value: CtyValue): CtyObject | null {
  return isPlainObject(value) ? value : null;
}
