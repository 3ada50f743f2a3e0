import {
  CtyBigNumber,
  CtyDynamic,
  CtyUnknown,
  UNKNOWN,
  decodeMsgpack,
  encodeMsgpack,
  isUnknown,
  t,
} from '../../../providers/nixos/protocol/cty';
import { PathError } from '../../../providers/nixos/protocol/diagnostics';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('cty msgpack: hand-made byte vectors', () => {
  const objA = t.object({ a: t.string });

  test('an object {"a":"x"}', () => {
    const bytes = hex('81 a1 61 a1 78');
    expect(decodeMsgpack(bytes, objA)).toStrictEqual({ a: 'x' });
    expect(toHex(encodeMsgpack({ a: 'x' }, objA))).toBe(toHex(bytes));
  });

  test('objects carry every attribute: absent reads as null, null is written as nil', () => {
    const type = t.object({ a: t.string, b: t.number });
    expect(decodeMsgpack(hex('81 a1 61 a1 78'), type)).toStrictEqual({ a: 'x', b: null });
    expect(toHex(encodeMsgpack({ a: 'x' }, type))).toBe('82a161a178a162c0');
  });

  test('an attribute the type lacks is an error with its path', () => {
    expect(() => decodeMsgpack(hex('81 a1 7a a1 78'), objA)).toThrow(/unsupported attribute "z"/);
    expect(() => encodeMsgpack({ a: 'x', z: 'y' }, objA)).toThrow(PathError);
  });

  test('unknown is extension 0: d4 00 00', () => {
    const value = decodeMsgpack(hex('d4 00 00'), t.string);
    expect(value).toBe(UNKNOWN);
    expect(toHex(encodeMsgpack(UNKNOWN, t.string))).toBe('d40000');
    expect(decodeMsgpack(hex('81 a1 61 d4 00 00'), objA)).toStrictEqual({ a: UNKNOWN });
  });

  test('a refined unknown (extension 12) is unknown and goes back unchanged', () => {
    // ext 8, 3 bytes of type 12: the refinement map {1: true} ("not null").
    const bytes = hex('c7 03 0c 81 01 c3');
    const value = decodeMsgpack(bytes, t.string);
    expect(isUnknown(value)).toBe(true);
    expect((value as CtyUnknown).extType).toBe(12);
    expect(toHex(encodeMsgpack(value, t.string))).toBe(toHex(bytes));
  });

  test('any extension is unknown, even the timestamp type -1', () => {
    expect(isUnknown(decodeMsgpack(hex('d6 ff 00 00 00 00'), t.number))).toBe(true);
    expect(isUnknown(decodeMsgpack(hex('d5 05 01 02'), t.bool))).toBe(true);
  });

  test('null is nil for every type, dynamic included', () => {
    for (const type of [t.string, t.number, t.list(t.string), objA, t.dynamic]) {
      expect(decodeMsgpack(hex('c0'), type)).toBeNull();
      expect(toHex(encodeMsgpack(null, type))).toBe('c0');
    }
  });

  test('numbers: small ints, floats, int64 and uint64', () => {
    expect(decodeMsgpack(hex('2a'), t.number)).toBe(42);
    expect(decodeMsgpack(hex('cb 3f f8 00 00 00 00 00 00'), t.number)).toBe(1.5);
    // 2^62 + 1 as int64 does not fit a JS number: it stays a bigint.
    const big = 2n ** 62n + 1n;
    expect(decodeMsgpack(hex('d3 40 00 00 00 00 00 00 01'), t.number)).toBe(big);
    expect(decodeMsgpack(hex('cf ff ff ff ff ff ff ff ff'), t.number)).toBe(2n ** 64n - 1n);
    expect(decodeMsgpack(encodeMsgpack(big, t.number), t.number)).toBe(big);
    // A safe integer sent as int64 becomes a plain number.
    expect(decodeMsgpack(hex('d3 00 00 00 00 00 00 00 07'), t.number)).toBe(7);
  });

  test('numbers sent as strings keep their precision', () => {
    const str = (s: string) => Buffer.concat([Buffer.from([0xa0 + s.length]), Buffer.from(s)]);
    // Larger than uint64: a bigint.
    expect(decodeMsgpack(str('123456789012345678901234'), t.number)).toBe(123456789012345678901234n);
    // 1.1 is not a float64: it must come back as the same text, not as 1.1000000000000000888.
    const decimal = decodeMsgpack(str('1.1'), t.number);
    expect(decimal).toStrictEqual(new CtyBigNumber('1.1'));
    expect(toHex(encodeMsgpack(decimal, t.number))).toBe(toHex(str('1.1')));
    // 1.5 is exactly a float64, so it is a plain number.
    expect(decodeMsgpack(str('1.5'), t.number)).toBe(1.5);
    expect(decodeMsgpack(str('1e3'), t.number)).toBe(1000);
    // Beyond int64 a bigint is written as text, like cty does.
    expect(decodeMsgpack(encodeMsgpack(2n ** 70n + 1n, t.number), t.number)).toBe(2n ** 70n + 1n);
    // An integer a float holds exactly is a number, however large.
    expect(decodeMsgpack(hex('d3 40 00 00 00 00 00 00 00'), t.number)).toBe(2 ** 62);
    expect(() => decodeMsgpack(str('abc'), t.number)).toThrow(/not a number/);
  });

  test('a dynamic value is [type JSON bytes, value]', () => {
    const expected = Buffer.concat([hex('92 c4 08'), Buffer.from('"string"'), hex('a1 78')]);
    const value = decodeMsgpack(expected, t.dynamic);
    expect(value).toStrictEqual(new CtyDynamic('string', 'x'));
    expect(toHex(encodeMsgpack(value, t.dynamic))).toBe(toHex(expected));
    // Terraform may write the type as a string too.
    const asStr = Buffer.concat([hex('92 a8'), Buffer.from('"string"'), hex('a1 78')]);
    expect(decodeMsgpack(asStr, t.dynamic)).toStrictEqual(new CtyDynamic('string', 'x'));
  });

  test('a plain JS value in a dynamic slot gets an inferred type', () => {
    const bytes = encodeMsgpack({ n: 1, tags: ['a'] }, t.dynamic);
    expect(decodeMsgpack(bytes, t.dynamic)).toStrictEqual(
      new CtyDynamic(t.object({ n: t.number, tags: t.tuple([t.string]) }), { n: 1, tags: ['a'] }),
    );
    // Unknown in a dynamic slot is written bare.
    expect(toHex(encodeMsgpack(UNKNOWN, t.dynamic))).toBe('d40000');
  });

  test('collections: list, set, map, tuple', () => {
    expect(decodeMsgpack(hex('92 01 02'), t.list(t.number))).toStrictEqual([1, 2]);
    expect(decodeMsgpack(hex('92 c3 c2'), t.set(t.bool))).toStrictEqual([true, false]);
    expect(decodeMsgpack(hex('81 a1 6b 05'), t.map(t.number))).toStrictEqual({ k: 5 });
    expect(toHex(encodeMsgpack({ k: 5 }, t.map(t.number)))).toBe('81a16b05');
    expect(decodeMsgpack(hex('92 a1 61 01'), t.tuple([t.string, t.number]))).toStrictEqual(['a', 1]);
  });

  test('a type mismatch names the path', () => {
    const type = t.object({ ports: t.list(t.number) });
    try {
      decodeMsgpack(hex('81 a5 706f727473 92 01 a1 78'), type);
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(PathError);
      expect((e as PathError).path).toStrictEqual(['ports', 1]);
      expect((e as PathError).message).toMatch(/^ports\[1\]: not a number/);
    }
  });
});
