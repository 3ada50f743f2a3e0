/**
 * The cty codec for JSON (tfplugin6.DynamicValue.json, and the raw state handed
 * to UpgradeResourceState). JSON cannot hold unknown values; a `dynamic`
 * value is `{"value": ..., "type": ...}`.
 *
 * JSON.parse would round every number to float64, and a number that comes back
 * changed upsets Terraform's consistency checks, so this file parses JSON itself
 * and keeps each number's text until the type says what it is.
 */
import { CtyBigNumber, CtyDynamic, CtyType, CtyValue, isPlainObject, isUnknown, typeFromJson, typeToJson } from './cty-types';
import { numberToJsonText, parseNumberText } from './cty-number';
import { AttributePath, PathError } from './diagnostics';
import { inferType } from './cty';

/** A JSON number whose text is kept. */
class JsonNumber {
  constructor(readonly text: string) {}
}

type JsonTree = null | boolean | string | JsonNumber | JsonTree[] | { [key: string]: JsonTree };

/** Decodes JSON text or bytes into a value of the given type. Throws PathError on a mismatch. */
export function decodeJson(json: string | Uint8Array, type: CtyType): CtyValue {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8');
  return fromTree(parseJson(text), type, []);
}

/** Encodes a known value of the given type as JSON text. */
export function encodeJson(value: CtyValue, type: CtyType): string {
  return toText(value, type, []);
}

function fail(message: string, path: AttributePath): never {
  throw new PathError(message, path);
}

function fromTree(tree: JsonTree | undefined, type: CtyType, path: AttributePath): CtyValue {
  if (tree === null || tree === undefined) return null;
  if (type === 'dynamic') {
    if (!isJsonObject(tree) || !('type' in tree) || !('value' in tree)) {
      fail('a dynamic value must be {"value": ..., "type": ...}', path);
    }
    const concrete = typeFromJson(treeToPlainJson(tree.type));
    return new CtyDynamic(concrete, fromTree(tree.value, concrete, path));
  }
  if (type === 'string') {
    // cty's JSON reader also accepts numbers and bools for strings; so do we.
    if (typeof tree === 'string') return tree;
    if (tree instanceof JsonNumber) return tree.text;
    if (typeof tree === 'boolean') return String(tree);
    fail('expected a string', path);
  }
  if (type === 'number') {
    const text = tree instanceof JsonNumber ? tree.text : typeof tree === 'string' ? tree : undefined;
    if (text === undefined) fail('expected a number', path);
    try {
      return parseNumberText(text);
    } catch (e) {
      fail((e as Error).message, path);
    }
  }
  if (type === 'bool') {
    if (typeof tree === 'boolean') return tree;
    if (tree === 'true' || tree === 'false') return tree === 'true';
    fail('expected a bool', path);
  }
  const [kind, arg] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(tree)) fail(`expected a ${kind}`, path);
      return tree.map((element, i) => fromTree(element, arg, [...path, i]));
    case 'tuple':
      if (!Array.isArray(tree) || tree.length !== arg.length) fail(`expected a tuple of ${arg.length}`, path);
      return tree.map((element, i) => fromTree(element, arg[i], [...path, i]));
    case 'map':
      if (!isJsonObject(tree)) fail('expected a map', path);
      return Object.fromEntries(Object.entries(tree).map(([key, v]) => [key, fromTree(v, arg, [...path, { key }])]));
    case 'object': {
      if (!isJsonObject(tree)) fail('expected an object', path);
      for (const key of Object.keys(tree)) {
        if (!(key in arg)) fail(`unsupported attribute "${key}"`, path);
      }
      return Object.fromEntries(
        Object.entries(arg).map(([name, attrType]) => [name, fromTree(tree[name], attrType, [...path, name])]),
      );
    }
  }
}

function isJsonObject(tree: JsonTree): tree is { [key: string]: JsonTree } {
  return tree !== null && typeof tree === 'object' && !Array.isArray(tree) && !(tree instanceof JsonNumber);
}

/** Converts a parsed subtree back to ordinary JSON text (for type descriptions). */
function treeToPlainJson(tree: JsonTree): string {
  if (tree instanceof JsonNumber) return tree.text;
  if (Array.isArray(tree)) return `[${tree.map(treeToPlainJson).join(',')}]`;
  if (tree !== null && typeof tree === 'object') {
    return `{${Object.entries(tree)
      .map(([k, v]) => `${JSON.stringify(k)}:${treeToPlainJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(tree);
}

function toText(value: CtyValue | undefined, type: CtyType, path: AttributePath): string {
  if (value === null || value === undefined) return 'null';
  if (isUnknown(value)) fail('an unknown value cannot be written as JSON', path);
  if (type === 'dynamic') {
    const dynamic = value instanceof CtyDynamic ? value : new CtyDynamic(inferType(value, path), value);
    return `{"value":${toText(dynamic.value, dynamic.type, path)},"type":${typeToJson(dynamic.type)}}`;
  }
  if (type === 'string') {
    if (typeof value !== 'string') fail('expected a string', path);
    return JSON.stringify(value);
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') fail('expected a bool', path);
    return String(value);
  }
  if (type === 'number') {
    if (typeof value === 'number' || typeof value === 'bigint' || value instanceof CtyBigNumber) {
      return numberToJsonText(value);
    }
    fail('expected a number', path);
  }
  const [kind, arg] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(value)) fail(`expected a ${kind}`, path);
      return `[${value.map((v, i) => toText(v, arg, [...path, i])).join(',')}]`;
    case 'tuple':
      if (!Array.isArray(value) || value.length !== arg.length) fail(`expected a tuple of ${arg.length}`, path);
      return `[${value.map((v, i) => toText(v, arg[i], [...path, i])).join(',')}]`;
    case 'map':
      if (!isPlainObject(value)) fail('expected a map', path);
      return `{${Object.entries(value)
        .map(([k, v]) => `${JSON.stringify(k)}:${toText(v, arg, [...path, { key: k }])}`)
        .join(',')}}`;
    case 'object':
      if (!isPlainObject(value)) fail('expected an object', path);
      for (const key of Object.keys(value)) {
        if (!(key in arg)) fail(`unsupported attribute "${key}"`, path);
      }
      return `{${Object.entries(arg)
        .map(([name, attrType]) => `${JSON.stringify(name)}:${toText(value[name], attrType, [...path, name])}`)
        .join(',')}}`;
  }
}

/** A minimal JSON parser (RFC 8259) that keeps numbers as text. */
export function parseJson(text: string): JsonTree {
  let pos = 0;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

  const syntaxError = (what: string): never => {
    throw new SyntaxError(`invalid JSON at offset ${pos}: ${what}`);
  };
  const skipSpace = () => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos])) pos++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[pos] !== char) syntaxError(`expected ${char}`);
    pos++;
  };
  const readString = (): string => {
    STRING.lastIndex = pos;
    const match = STRING.exec(text);
    if (!match) return syntaxError('bad string');
    pos = STRING.lastIndex;
    return JSON.parse(match[0]) as string;
  };
  const readValue = (): JsonTree => {
    skipSpace();
    const char = text[pos];
    if (char === '{') {
      pos++;
      const object: { [key: string]: JsonTree } = {};
      skipSpace();
      if (text[pos] === '}') {
        pos++;
        return object;
      }
      for (;;) {
        skipSpace();
        const key = readString();
        expect(':');
        // defineProperty, so that a key named __proto__ is data, not a prototype.
        Object.defineProperty(object, key, { value: readValue(), enumerable: true, writable: true, configurable: true });
        skipSpace();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return object;
        } else syntaxError('expected , or }');
      }
    }
    if (char === '[') {
      pos++;
      const array: JsonTree[] = [];
      skipSpace();
      if (text[pos] === ']') {
        pos++;
        return array;
      }
      for (;;) {
        array.push(readValue());
        skipSpace();
        if (text[pos] === ',') pos++;
        else if (text[pos] === ']') {
          pos++;
          return array;
        } else syntaxError('expected , or ]');
      }
    }
    if (char === '"') return readString();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const match = NUMBER.exec(text);
    if (!match) return syntaxError('unexpected character');
    pos = NUMBER.lastIndex;
    return new JsonNumber(match[0]);
  };

  const result = readValue();
  skipSpace();
  if (pos !== text.length) syntaxError('trailing characters');
  return result;
}
