import { expect } from 'chai';
import { spliceJsonFields } from '../../src/data/splice.js';
import { Rng } from '../../src/util/rng.js';

/** A random JSON value written with random spacing, strings holding quotes, braces and escapes. */
function randomJson(rng: Rng, depth: number): string {
  const space = (): string => [' ', '', '\t', '\n '][rng.int(0, 3)];
  const pick = rng.int(0, depth > 2 ? 3 : 5);
  if (pick === 0) return JSON.stringify(['a"b', '{[}]', 'é\\', '\u2028', ''][rng.int(0, 4)]);
  if (pick === 1) return ['1e999', '-0.10000000000000001', '12345678901234567890', '3', 'true', 'null'][rng.int(0, 5)];
  if (pick === 2) return JSON.stringify(String(rng.int(0, 99)));
  if (pick === 3) return 'false';
  if (pick === 4) return `[${space()}${Array.from({ length: rng.int(0, 3) }, () => randomJson(rng, depth + 1)).join(`,${space()}`)}${space()}]`;
  const n = rng.int(0, 3);
  return `{${space()}${Array.from({ length: n }, (_, i) => `${JSON.stringify(`k${i}`)}${space()}:${space()}${randomJson(rng, depth + 1)}`).join(`,${space()}`)}${space()}}`;
}

describe('spliceJsonFields: set fields, leave the rest of the text as written', () => {
  it('appends a new field and replaces an existing one in place', () => {
    expect(spliceJsonFields('{"a":1e999,"b":[1,2]}', { s: [0.5] })).to.equal('{"a":1e999,"b":[1,2],"s":[0.5]}');
    expect(spliceJsonFields('{ "s" : "old", "n": 12345678901234567890 }', { s: [1] })).to.equal('{ "s" : [1], "n": 12345678901234567890 }');
    expect(spliceJsonFields('{}', { s: null })).to.equal('{"s":null}');
    expect(spliceJsonFields(' { } ', { a: 1, b: 'x' })).to.equal(' { "a":1,"b":"x"} ');
    // A key repeated in the line (JSON.parse keeps the last) is replaced everywhere.
    expect(spliceJsonFields('{"s":1,"t":"}","s":2}', { s: 3 })).to.equal('{"s":3,"t":"}","s":3}');
  });

  it('on random objects: parses to the input with the fields set, and the untouched text is unchanged', () => {
    const rng = new Rng(18);
    for (let i = 0; i < 500; i++) {
      let text = randomJson(rng, 0);
      if (!text.startsWith('{')) text = `{"v":${text}}`;
      const fields = rng.bernoulli(0.5) ? { k0: [rng.next()] } : { added: rng.int(0, 9), k1: 'x' };
      const out = spliceJsonFields(text, fields);
      expect(JSON.parse(out), text).to.deep.equal({ ...JSON.parse(text), ...fields });
      // Every byte outside the set fields is kept: the unchanged prefix holds all text up to
      // the first set field (or the closing brace).
      const firstKey = Object.keys(fields).map((k) => text.indexOf(`"${k}"`)).filter((at) => at >= 0);
      const keep = firstKey.length > 0 ? Math.min(...firstKey) : text.lastIndexOf('}');
      expect(out.slice(0, keep)).to.equal(text.slice(0, keep));
    }
  });
});
