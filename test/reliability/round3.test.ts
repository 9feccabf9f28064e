/**
 * Hostile inputs of the third probe, through the real CLI (families, not single inputs):
 *
 * - input files that are not regular files (a device that never ends, a FIFO whose open blocks,
 *   a directory) or not valid (an alias bomb, invalid JSON) in every place a file is named:
 *   a prompt error naming the file, never a hang or unbounded memory;
 * - malformed --set: usage (exit 2);
 * - two writers on one output (run, search): the second exits 1 naming the first's pid.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockRunDirectory } from '../../src/util/write-lock.js';
import { runCli } from '../support/cli.js';

describe('reliability: input files, --set, and one writer per output (CLI)', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-round3-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const yaml = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefghij'.split('').map((n, i) => `${n}: &${n} [${Array(9).fill(`*${'abcdefghij'[i]}`).join(', ')}]`), 'name: bomb'].join('\n');
  const badJson = yaml('bad.json', '{"hidden_size": ');

  /** [what, args, exit code, what stderr must name] */
  const inputs: [string, string[], number, RegExp][] = [
    ['a device as the recipe', ['plan', '/dev/zero'], 2, /\/dev\/zero: is a device/],
    ['a device in extends:', ['plan', yaml('zero.yaml', 'extends: /dev/zero\nname: z\n')], 2, /\/dev\/zero: is a device/],
    ['a FIFO in extends:', ['plan', yaml('fifo.yaml', `extends: ${fifo}\nname: f\n`)], 2, /fifo: is a FIFO/],
    ['a directory as the recipe', ['plan', dir], 2, /is a directory/],
    ['a YAML alias bomb', ['plan', yaml('bomb.yaml', bomb)], 2, /bomb\.yaml: YAML cannot be loaded: Excessive alias count/],
    ['a FIFO as --model-config', ['plan', 'recipes/quickstart.yaml', '--model-config', fifo], 1, /fifo: cannot read \(is a FIFO/],
    ['a directory as --model-config', ['plan', 'recipes/quickstart.yaml', '--model-config', dir], 1, new RegExp(`${dir}: cannot read \\(is a directory`)],
    ['invalid JSON as --model-config', ['plan', 'recipes/quickstart.yaml', '--model-config', badJson], 1, /bad\.json: invalid JSON/],
    ['a FIFO as run data', ['run', yaml('data-fifo.yaml', `extends: ${join(process.cwd(), 'recipes/quickstart.yaml')}\ndata:\n  source: file\n  path: ${fifo}\n`), '--out', join(dir, 'o-fifo')], 1, /fifo: is a FIFO/],
    ['--set without =', ['plan', 'recipes/quickstart.yaml', '--set', 'train.lr'], 2, /--set train\.lr: expected key\.path=value/],
    ['--set with no key', ['plan', 'recipes/quickstart.yaml', '--set', '=1'], 2, /--set =1: expected key\.path=value/],
  ];
  for (const [what, args, code, names] of inputs) {
    it(`${what}: exit ${code}, the file named, within seconds`, async () => {
      const t0 = Date.now();
      const r = await runCli(args);
      expect(r.code, r.stderr).to.equal(code);
      expect(r.stderr).to.match(names);
      expect(r.stderr).to.not.match(/\n\s+at /); // no stack trace
      expect(Date.now() - t0).to.be.below(30_000);
    });
  }

  it('a second `prmkit run` on a run directory being written exits 1 naming the holder pid', async () => {
    const out = join(dir, 'run-locked');
    const lock = lockRunDirectory(out);
    try {
      const r = await runCli(['run', 'recipes/quickstart.yaml', '--out', out, '--resume']);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.include(`pid ${process.pid}`);
    } finally {
      lock.release();
    }
  });

  it('a second `prmkit search` on a search directory being written exits 1 naming the holder pid', async () => {
    const out = join(dir, 'search-locked');
    const problems = yaml('problems.jsonl', `${JSON.stringify({ id: 'p1', problem: '1+1?', answer: '2' })}\n`);
    const lock = lockRunDirectory(out);
    try {
      const r = await runCli(['search', '--policy', 'http://127.0.0.1:9', '--reward', 'sim-truth', '--problems', problems, '--out', out, '--retries', '0']);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.include(`pid ${process.pid}`);
    } finally {
      lock.release();
    }
  });
});
