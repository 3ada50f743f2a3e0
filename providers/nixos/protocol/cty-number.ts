/**
 * cty numbers are arbitrary-precision decimals; JavaScript has float64 and
 * bigint. These helpers pick the representation that loses nothing, because a
 * number that comes back from the provider even slightly changed makes
 * Terraform report an inconsistent plan.
 */
import { CtyBigNumber } from './cty-types';

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A JS number, bigint or CtyBigNumber. */
export type NumberValue = number | bigint | CtyBigNumber;

/**
 * Normalises an integer. The rule for the whole codec: a number is a JS number
 * exactly when a float64 holds it without rounding, so one value always has
 * one representation; other integers stay bigints.
 */
export function fromBigInt(value: bigint): number | bigint {
  const float = Number(value);
  return Number.isFinite(float) && BigInt(float) === value ? float : value;
}

/**
 * Reads decimal text (a number Terraform sent as a string, or a JSON number).
 * Integers become number or bigint, fractions a number only when the float is
 * exactly the decimal, and everything else a CtyBigNumber holding the text.
 */
export function parseNumberText(text: string): NumberValue {
  const trimmed = text.trim();
  const match = DECIMAL.exec(trimmed);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new Error(`not a number: ${JSON.stringify(text)}`);
  }
  const [, sign, whole, fraction = '', exponentText = '0'] = match;
  const exponent = Number(exponentText) - fraction.length;
  let digits = BigInt((whole || '0') + fraction);
  if (sign === '-') digits = -digits;
  if (digits === 0n) return sign === '-' ? -0 : 0;
  if (exponent >= 0 && exponent < 400) return fromBigInt(digits * 10n ** BigInt(exponent));
  const float = Number(trimmed);
  if (Number.isFinite(float) && exponent > -1100 && floatEqualsDecimal(float, digits, exponent)) return float;
  return new CtyBigNumber(trimmed);
}

/** Whether float === digits * 10^exponent exactly (exponent < 0). */
function floatEqualsDecimal(float: number, digits: bigint, exponent: number): boolean {
  const [mantissa, binaryExponent] = decomposeFloat(float);
  // float = mantissa * 2^binaryExponent; decimal = digits / 10^-exponent.
  // Compare mantissa * 2^be * 10^-e with digits, moving powers of two to the side where they are positive.
  let left = mantissa * 10n ** BigInt(-exponent);
  let right = digits;
  if (binaryExponent >= 0) left <<= BigInt(binaryExponent);
  else right <<= BigInt(-binaryExponent);
  return left === right;
}

/** Splits a finite float into an integer mantissa and a power of two. */
function decomposeFloat(float: number): [bigint, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, float);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const rawExponent = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exponent: number;
  if (rawExponent === 0) {
    exponent = -1074;
  } else {
    mantissa |= 1n << 52n;
    exponent = rawExponent - 1075;
  }
  return [negative ? -mantissa : mantissa, exponent];
}

/**
 * What to hand the msgpack encoder for a number, following cty's own rule:
 * an int64 as an integer, an exact float as a float, anything else as decimal text.
 */
export function numberToMsgpack(value: NumberValue): number | bigint | string {
  if (value instanceof CtyBigNumber) return value.text;
  if (typeof value === 'bigint') {
    return value >= INT64_MIN && value <= UINT64_MAX ? value : value.toString();
  }
  if (Number.isNaN(value)) throw new Error('NaN is not a cty number');
  // Integral floats past 2^53 are exact integers; send them as int64 like cty does.
  if (Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) < 2 ** 63) return BigInt(value);
  return value;
}

/** A number as JSON text. Floats use JavaScript's shortest round-trip form. */
export function numberToJsonText(value: NumberValue): string {
  if (value instanceof CtyBigNumber) return value.text;
  if (typeof value === 'bigint') return value.toString();
  if (!Number.isFinite(value)) throw new Error(`${value} cannot be written as JSON`);
  return Object.is(value, -0) ? '0' : JSON.stringify(value);
}
