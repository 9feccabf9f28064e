import { expect } from 'chai';
import { withTempDir } from '../support/temp-dir.js';
import { linkSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AtomicOutputSet, findOutputOverInput, writeAtomically, writeFileAtomic } from '../../src/util/durable-fs.js';
import { writeJsonlAtomically } from '../../src/data/jsonl.js';

describe('durable-fs: atomic outputs', () => {
  let dir = '';
  withTempDir('prmkit-durable-', (d) => (dir = d));

  it('puts a file in place only when its writer succeeds', async () => {
    const target = join(dir, 'out.txt');
    writeFileSync(target, 'old');
    await writeFileAtomic(target, 'new');
    expect(readFileSync(target, 'utf8')).to.equal('new');
    expect(readdirSync(dir)).to.deep.equal(['out.txt']);
  });

  it('a writer that fails midway leaves the old file and no temporary one', async () => {
    const target = join(dir, 'out.jsonl');
    writeFileSync(target, 'old\n');
    let tempPath = '';
    const failing = writeAtomically(target, async (tmp) => {
      tempPath = tmp;
      writeFileSync(tmp, 'partial');
      throw new Error('disk full');
    });
    const err = await failing.then(() => undefined, (e: Error) => e);
    expect(err?.message).to.equal('disk full');
    expect(tempPath.startsWith(join(dir, '.out.jsonl.'))).to.equal(true);
    expect(readFileSync(target, 'utf8')).to.equal('old\n');
    expect(readdirSync(dir)).to.deep.equal(['out.jsonl']);
  });

  it('JSONL written through writeJsonlAtomically: all lines or the old file', async () => {
    const target = join(dir, 'lines.jsonl');
    writeFileSync(target, 'old\n');
    const err = await writeJsonlAtomically(target, async (out) => {
      await out.write({ a: 1 });
      await out.write({ b: 2 });
      throw new Error('bad record at line 3');
    }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('bad record at line 3');
    expect(readFileSync(target, 'utf8')).to.equal('old\n');
    const n = await writeJsonlAtomically(target, async (out) => {
      await out.write({ a: 1 });
      await out.writeLine('{"b":1e999}');
      return 2;
    });
    expect(n).to.equal(2);
    expect(readFileSync(target, 'utf8')).to.equal('{"a":1}\n{"b":1e999}\n');
    expect(readdirSync(dir)).to.deep.equal(['lines.jsonl']);
  });

  it('a set of outputs is committed together, or discarded together', async () => {
    const a = join(dir, 'sub', 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(b, 'old b');
    const failed = new AtomicOutputSet();
    await failed.addFile(a, 'new a');
    await failed.addFile(b, 'new b');
    await failed.discard();
    expect(readFileSync(b, 'utf8')).to.equal('old b');
    expect(readdirSync(join(dir, 'sub'))).to.deep.equal([]);
    const ok = new AtomicOutputSet();
    await ok.addFile(a, 'new a');
    await ok.addFile(b, 'new b');
    await ok.commit();
    expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).to.deep.equal(['new a', 'new b']);
  });

  it('finds an output that is an input by name, symlink or hard link (dev+ino), not a mere lookalike', async () => {
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, '{}\n');
    symlinkSync(input, join(dir, 'sym.jsonl'));
    linkSync(input, join(dir, 'hard.jsonl'));
    writeFileSync(join(dir, 'copy.jsonl'), '{}\n');
    for (const out of [input, join(dir, 'sym.jsonl'), join(dir, 'hard.jsonl'), join(dir, '.', 'in.jsonl')]) {
      expect(await findOutputOverInput([input], [join(dir, 'missing.jsonl'), out])).to.deep.equal({ input, output: out });
    }
    expect(await findOutputOverInput([input], [join(dir, 'copy.jsonl'), join(dir, 'missing.jsonl')])).to.equal(undefined);
  });

  it("the next write into a directory removes temporaries that a killed writer left (its pid is gone), not a live writer's", async () => {
    const { spawnSync } = await import('node:child_process');
    // A pid that surely is not running: a process that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const plots = join(dir, 'plots');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(plots);
    const stale = [`.dev_curve.svg.${dead}-0a1b2c3d.tmp`, `.bon.svg.${dead}-deadbeef.tmp`];
    const live = `.other.svg.${process.ppid}-01234567.tmp`;
    for (const name of [...stale, live]) writeFileSync(join(plots, name), 'half a plot');
    await writeFileAtomic(join(plots, 'dev_curve.svg'), '<svg/>');
    expect(readdirSync(plots).sort()).to.deep.equal([live, 'dev_curve.svg'].sort());
  });
});

