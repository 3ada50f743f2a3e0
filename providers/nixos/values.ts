/**
 * Reading cty values of the nixos provider's schemas into plain engine inputs.
 */
import { CtyBigNumber, CtyDynamic, CtyObject, CtyValue, isPlainObject, isUnknown } from './protocol/cty-types';
import { PathError } from './protocol/diagnostics';
import type { Json } from '../../lib/engine';

/** A string attribute, or undefined when null. Throws on unknown (callers check first). */
export function str(value: CtyValue | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw new Error(`expected a known string, got ${isUnknown(value) ? 'an unknown value' : typeof value}`);
}

/** A number attribute, or undefined when null. */
export function num(value: CtyValue | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof CtyBigNumber) return value.toNumber();
  throw new Error(`expected a known number, got ${isUnknown(value) ? 'an unknown value' : typeof value}`);
}

/** A list attribute (nested list block), [] when null. */
export function list(value: CtyValue | undefined): CtyObject[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new Error('expected a list');
  return value.filter(isPlainObject);
}

/** A map attribute (nested map block), {} when null. */
export function map(value: CtyValue | undefined): { [key: string]: CtyObject } {
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new Error('expected a map');
  const out: { [key: string]: CtyObject } = {};
  for (const [k, v] of Object.entries(value)) if (isPlainObject(v)) out[k] = v;
  return out;
}

/** A fully known cty value as JSON (dynamic values unwrapped, big numbers as numbers). */
export function toJson(value: CtyValue, path: (string | number)[] = []): Json {
  if (value === null) return null;
  if (isUnknown(value)) throw new PathError('the value is not known yet', path);
  if (value instanceof CtyDynamic) return toJson(value.value, path);
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof CtyBigNumber) return value.toNumber();
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v, i) => toJson(v, [...path, i]));
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJson(v, [...path, k]);
  return out;
}

/** A canonical text of a cty value (unknowns included), for equality checks. */
export function canonical(value: CtyValue | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (isUnknown(value)) return '?';
  if (value instanceof CtyDynamic) return `dyn(${JSON.stringify(value.type)},${canonical(value.value)})`;
  if (typeof value === 'bigint') return `${value}`;
  if (value instanceof CtyBigNumber) return value.text;
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}
