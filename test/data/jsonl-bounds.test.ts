import { expect } from 'chai';
import { withTempDir } from '../support/temp-dir.js';
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { depthViolation, mayOverflow, nonFiniteField, readJsonl, RecordError, type JsonlLine } from '../../src/data/jsonl.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { Rng } from '../../src/util/rng.js';

async function readAll(file: string, opts: Parameters<typeof readJsonl>[1] = {}): Promise<{ lines: JsonlLine[]; errors: RecordError[] }> {
  const lines: JsonlLine[] = [];
  const errors: RecordError[] = [];
  for await (const l of readJsonl(file, { ...opts, onParseError: (e) => errors.push(e) })) lines.push(l);
  return { lines, errors };
}

describe('JSONL reader: bounded work and no silent change', () => {
  let dir = '';
  withTempDir('prmkit-jsonl-', (d) => (dir = d), 'suite');

  it('reads CRLF endings and a byte-order mark as if they were not there; keeps each line as written', async () => {
    const file = join(dir, 'crlf-bom.jsonl');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1.50}\r\n\r\n{"b":"x\\r"}\r\n')]));
    const { lines, errors } = await readAll(file);
    expect(errors).to.deep.equal([]);
    expect(lines).to.deep.equal([
      { value: { a: 1.5 }, line: 1, raw: '{"a":1.50}' },
      { value: { b: 'x\r' }, line: 3, raw: '{"b":"x\\r"}' },
    ]);
    const { samples } = await readAllStepSamples(
      await writeTemp('bom-prmkit.jsonl', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"a","problem":"p","steps":["s"],"source":"t","meta":{}}\n')])),
      { format: 'prmkit' },
    );
    expect(samples.map((s) => s.id)).to.deep.equal(['a']);
  });

  it('invalid UTF-8 is an error at its line and byte, never U+FFFD', async () => {
    const file = await writeTemp('bad-utf8.jsonl', Buffer.concat([Buffer.from('{"a":"ok"}\n{"a":"x'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"a":"é"}\n')]));
    const { lines, errors } = await readAll(file);
    expect(lines.map((l) => l.value)).to.deep.equal([{ a: 'ok' }, { a: 'é' }]);
    expect(errors.map((e) => e.message)).to.deep.equal([`${file}:2: invalid UTF-8 at byte 8 of the line (0xc3)`]);
    // Without a handler the read stops there.
    const err = await (async () => {
      for await (const _ of readJsonl(file));
    })().catch((e: Error) => e);
    expect(err).to.be.instanceOf(RecordError);
    expect((err as RecordError).line).to.equal(2);
  });

  it('a line over maxLineBytes is reported by size and skipped without being held in memory', async () => {
    // 40 MB without a single newline, then a good line: memory must stay near the limit.
    const file = join(dir, 'huge.jsonl');
    const out = createWriteStream(file);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    out.write('{"a":"');
    for (let i = 0; i < 40; i++) if (!out.write(chunk)) await once(out, 'drain');
    out.end('"}\n{"b":2}\n');
    await once(out, 'finish');
    const heapBefore = process.memoryUsage().heapUsed;
    const { lines, errors } = await readAll(file, { maxLineBytes: 1 << 16 });
    expect(process.memoryUsage().heapUsed - heapBefore, 'heap growth').to.be.below(16 << 20);
    expect(lines.map((l) => [l.line, l.value])).to.deep.equal([[2, { b: 2 }]]);
    expect(errors).to.have.length(1);
    expect(errors[0].message).to.equal(`${file}:1: line of ${40 * (1 << 20) + 8} bytes is longer than the limit of 65536 (PRMKIT_MAX_LINE_BYTES raises it)`);
  });

  it('nesting deeper than maxDepth is refused before JSON.parse; strings with brackets do not count', async () => {
    const deep = `{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const bracketsInString = JSON.stringify({ s: '[[[[[[[[[[{{{{{{{{{{'.repeat(50) });
    const ok = `{"x":${'['.repeat(10)}${']'.repeat(10)}}`;
    const file = await writeTemp('deep.jsonl', [deep, bracketsInString, ok].join('\n'));
    const { lines, errors } = await readAll(file, { maxDepth: 16 });
    expect(lines.map((l) => l.line)).to.deep.equal([2, 3]);
    expect(errors.map((e) => e.message)).to.deep.equal([`${file}:1: nested deeper than 16 levels (PRMKIT_MAX_JSON_DEPTH raises it)`]);
    expect(depthViolation(Buffer.from(ok), 11)).to.equal(-1);
    expect(depthViolation(Buffer.from(ok), 10)).to.equal(ok.indexOf('[') + 9); // the 11th bracket
  });

  it('numbers past the double range are found (not silently null) by a cheap screen and an exact walk', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 200; i++) {
      const exp = rng.int(0, 400);
      const text = `{"a":[1,{"b":${rng.int(1, 9)}e${exp}}]}`;
      const value = JSON.parse(text);
      const overflow = mayOverflow(text) ? nonFiniteField(value) : undefined;
      expect(overflow, text).to.equal(Number.isFinite(value.a[1].b) ? undefined : 'a[1].b');
    }
    expect(nonFiniteField({ meta: { x: [1, 2, -Infinity] } })).to.equal('meta.x[2]');
    expect(mayOverflow(`{"n":${'9'.repeat(310)}}`)).to.equal(true);
  });

  it('the format readers report such numbers at their line instead of writing null later', async () => {
    const file = await writeTemp('inf.jsonl', '{"id":"a","problem":"p","steps":["s"],"source":"t","meta":{"x":1e999}}\n');
    const err = await readAllStepSamples(file, { format: 'prmkit' }).catch((e: Error) => e);
    expect((err as Error).message).to.include(`${file}:1: field "meta.x": a number too large for a double`);
  });

  async function writeTemp(name: string, content: string | Buffer): Promise<string> {
    const file = join(dir, name);
    writeFileSync(file, content);
    return file;
  }
});
