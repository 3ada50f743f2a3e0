import { CtyBigNumber, CtyDynamic, t } from '../../../providers/nixos/protocol/cty-types';
import { decodeJson, encodeJson, parseJson } from '../../../providers/nixos/protocol/cty-json';
import { PathError } from '../../../providers/nixos/protocol/diagnostics';

describe('cty JSON', () => {
  const type = t.object({
    name: t.string,
    port: t.number,
    enabled: t.bool,
    tags: t.set(t.string),
    env: t.map(t.string),
    extra: t.dynamic,
    missing: t.list(t.number),
  });

  test('decodes a state document against its type', () => {
    const json =
      '{"name":"web","port":22,"enabled":true,"tags":["a","b"],"env":{"K":"v"},' +
      '"extra":{"value":{"x":[1,"two"]},"type":["object",{"x":["tuple",["number","string"]]}]}}';
    expect(decodeJson(json, type)).toStrictEqual({
      name: 'web',
      port: 22,
      enabled: true,
      tags: ['a', 'b'],
      env: { K: 'v' },
      extra: new CtyDynamic(t.object({ x: t.tuple([t.number, t.string]) }), { x: [1, 'two'] }),
      missing: null,
    });
  });

  test('keeps the precision of numbers JSON.parse would round', () => {
    expect(decodeJson('123456789012345678901', t.number)).toBe(123456789012345678901n);
    expect(decodeJson('0.1', t.number)).toStrictEqual(new CtyBigNumber('0.1'));
    expect(decodeJson('0.25', t.number)).toBe(0.25);
    expect(decodeJson('-2.5e2', t.number)).toBe(-250);
    expect(decodeJson('"42"', t.number)).toBe(42);
    expect(encodeJson(new CtyBigNumber('0.1'), t.number)).toBe('0.1');
    expect(encodeJson(2n ** 80n, t.number)).toBe('1208925819614629174706176');
  });

  test('writes every attribute of an object, null for the absent ones', () => {
    expect(encodeJson({ name: 'x' }, t.object({ name: t.string, port: t.number }))).toBe('{"name":"x","port":null}');
  });

  test('errors carry the attribute path', () => {
    try {
      decodeJson('{"env":{"K":1.5e999999,"L":[]}}', t.object({ env: t.map(t.string) }));
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(PathError);
      expect((e as PathError).path).toStrictEqual(['env', { key: 'L' }]);
    }
  });

  test('the parser rejects malformed JSON', () => {
    for (const bad of ['{', '[1,]', '{"a" 1}', '01', 'nul', '"\\x"', '1 2']) {
      expect(() => parseJson(bad)).toThrow(SyntaxError);
    }
  });
});
