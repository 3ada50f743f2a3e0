/**
 * Property tests: random types, random values of those types, encoded and
 * decoded again. A small seeded generator keeps failures reproducible.
 */
import {
  CtyBigNumber,
  CtyDynamic,
  CtyType,
  CtyUnknown,
  CtyValue,
  UNKNOWN,
  decodeMsgpack,
  encodeMsgpack,
} from '../../../providers/nixos/protocol/cty';
import { decodeJson, encodeJson } from '../../../providers/nixos/protocol/cty-json';
import { fromBigInt } from '../../../providers/nixos/protocol/cty-number';

/** mulberry32: a tiny seeded PRNG. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

function randomName(r: Rng): string {
  return r.pick(['a', 'b', 'host', 'port', 'special_args', 'x-y', 'ünï', '', '0', 'with space']);
}

function randomType(r: Rng, depth: number): CtyType {
  const leaves: CtyType[] = ['string', 'number', 'bool', 'dynamic'];
  if (depth <= 0 || r.next() < 0.35) return r.pick(leaves);
  const kind = r.pick(['list', 'set', 'map', 'object', 'tuple'] as const);
  switch (kind) {
    case 'list':
    case 'set':
    case 'map':
      return [kind, randomType(r, depth - 1)];
    case 'object': {
      const attributes: Record<string, CtyType> = {};
      for (let i = r.int(4); i > 0; i--) attributes[randomName(r)] = randomType(r, depth - 1);
      return ['object', attributes];
    }
    case 'tuple':
      return ['tuple', Array.from({ length: r.int(4) }, () => randomType(r, depth - 1))];
  }
}

interface ValueOptions {
  unknowns: boolean;
  /** JSON can only bring back floats whose decimal text is exact. */
  exactFloatsOnly: boolean;
}

function randomNumber(r: Rng, options: ValueOptions): CtyValue {
  switch (r.int(6)) {
    case 0:
      return r.int(2000) - 1000;
    case 1:
      return Number.MAX_SAFE_INTEGER - r.int(10);
    case 2:
      // Integers beyond 2^53, up to 2^80 (past uint64, which forces the text form).
      // (normalised the way the codec does: bigint only where a float would round)
      return fromBigInt((2n ** BigInt(54 + r.int(27)) + BigInt(r.int(1e9))) * (r.next() < 0.5 ? -1n : 1n));
    case 3:
      return options.exactFloatsOnly ? r.int(1 << 20) / 1024 : (r.next() - 0.5) * 10 ** r.int(30);
    case 4:
      // A decimal ending in 1 after the point is never a float64.
      return new CtyBigNumber(`${r.int(1000)}.${r.int(1000)}1`);
    default:
      return 0;
  }
}

function randomValue(r: Rng, type: CtyType, depth: number, options: ValueOptions, nullable = true): CtyValue {
  if (nullable && r.next() < 0.08) return null;
  if (options.unknowns && nullable && r.next() < 0.08) return r.next() < 0.5 ? UNKNOWN : new CtyUnknown(12, new Uint8Array([0x81, 0x01, 0xc3]));
  const count = () => r.int(4);
  if (type === 'string') return r.pick(['', 'x', 'ünïcødé ✓', 'a"b\\c\n', 'x'.repeat(300)]);
  if (type === 'bool') return r.next() < 0.5;
  if (type === 'number') return randomNumber(r, options);
  if (type === 'dynamic') {
    const concrete = randomType(r, Math.min(depth, 2));
    const inner = concrete === 'dynamic' ? 'x' : randomValue(r, concrete, depth - 1, options, false);
    return new CtyDynamic(concrete === 'dynamic' ? 'string' : concrete, inner);
  }
  const [kind, arg] = type;
  switch (kind) {
    case 'list':
    case 'set':
      return Array.from({ length: count() }, () => randomValue(r, arg, depth - 1, options));
    case 'map':
      return Object.fromEntries(Array.from({ length: count() }, () => [randomName(r), randomValue(r, arg, depth - 1, options)]));
    case 'object':
      return Object.fromEntries(Object.entries(arg).map(([k, sub]) => [k, randomValue(r, sub, depth - 1, options)]));
    case 'tuple':
      return arg.map((sub) => randomValue(r, sub, depth - 1, options));
  }
}

const CASES = 500;

test.each([1, 2, 3, 4])('msgpack round trip of random values (seed %i)', (seed) => {
  const r = rng(seed);
  for (let i = 0; i < CASES; i++) {
    const type = randomType(r, 4);
    const value = randomValue(r, type, 4, { unknowns: true, exactFloatsOnly: false });
    const bytes = encodeMsgpack(value, type);
    const decoded = decodeMsgpack(bytes, type);
    expect({ type, value: decoded }).toStrictEqual({ type, value });
    // And the bytes are stable: what we read, we write back identically.
    expect(Buffer.from(encodeMsgpack(decoded, type))).toStrictEqual(Buffer.from(bytes));
  }
});

test.each([5, 6])('JSON round trip of random known values (seed %i)', (seed) => {
  const r = rng(seed);
  for (let i = 0; i < CASES; i++) {
    const type = randomType(r, 4);
    const value = randomValue(r, type, 4, { unknowns: false, exactFloatsOnly: true });
    const decoded = decodeJson(encodeJson(value, type), type);
    expect({ type, value: decoded }).toStrictEqual({ type, value });
    // msgpack and JSON agree on the value.
    expect(decodeMsgpack(encodeMsgpack(decoded, type), type)).toStrictEqual(value);
  }
});
