import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { detectFormat, readAllStepSamples } from '../../src/data/read.js';
import { guessFormat } from '../../src/data/formats.js';
import { REPO_ROOT, tempDir, writeJsonlFile } from './support.js';

describe('the plain record {problem, steps, labels}', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('prmkit-plain-')));
  after(() => cleanup());

  it('is detected as prmkit with or without id and source; other layouts keep their detection', () => {
    expect(guessFormat({ problem: 'p', steps: ['a'], labels: [1] })).to.equal('prmkit');
    expect(guessFormat({ id: 7, problem: 'p', steps: ['a'], labels: [1] })).to.equal('prmkit');
    expect(guessFormat({ problem: 'p', steps: ['a'], labels: [1], source: 'mine' })).to.equal('prmkit');
    expect(guessFormat({ problem: 'p', steps: ['a'] })).to.equal('prmkit');
    // ProcessBench (label), BoN (responses or code) and a problem without steps are not plain records.
    expect(guessFormat({ id: 'x', problem: 'p', steps: ['a'], label: -1 })).to.equal('processbench');
    expect(guessFormat({ problem: 'p', steps: ['a'], responses: ['r'], answer: '1' })).to.equal('bon');
    expect(guessFormat({ problem: 'p', answer: '1' })).to.equal('bon');
    expect(guessFormat({ problem: 'p', steps: 'a' })).to.equal(undefined);
  });

  it('reads as StepSamples: positional id, file stem as source, boolean labels as 0/1, nothing dropped', async () => {
    const file = await writeJsonlFile(join(dir, 'mine.jsonl'), [
      { problem: 'What is 1+1?', steps: ['1+1 = 2', 'The answer is 2'], labels: [1, 1] },
      { id: 'q2', problem: 'What is 2*3?', steps: ['2*3 = 5', 'The answer is 5'], labels: [true, false], source: 'hand' },
      { id: 3, problem: 'What is 3-1?', steps: ['3-1 = 2'], labels: [0.75] },
    ]);
    expect((await detectFormat(file)).format).to.equal('prmkit');
    const { samples, stats } = await readAllStepSamples(file, { format: 'prmkit' });
    expect(stats).to.include({ rejected: 0 });
    expect(samples.map((s) => [s.id, s.source, s.labels])).to.deep.equal([
      ['mine-1', 'mine', [1, 1]],
      ['q2', 'hand', [1, 0]],
      ['3', 'mine', [0.75]],
    ]);
    expect(samples[1].steps).to.deep.equal(['2*3 = 5', 'The answer is 5']);
  });

  it('still names file:line and field for a bad plain record', async () => {
    const file = await writeJsonlFile(join(dir, 'bad.jsonl'), [
      { problem: 'p', steps: ['a', 'b'], labels: [1, 1] },
      { problem: 'p', steps: ['a', 'b'], labels: [1, 'yes'] },
    ]);
    expect((await detectFormat(file)).format).to.equal('prmkit');
    const err = await readAllStepSamples(file, { format: 'prmkit' }).catch((e: Error) => e);
    expect((err as Error).message).to.contain('bad.jsonl:2: field "labels[1]": expected a number or a boolean');
  });

  it('`prmkit data stats` reads it without --format (it used to stop: "cannot tell the record format")', async () => {
    const file = await writeJsonlFile(join(dir, 'conv.jsonl'), [
      { problem: 'p', steps: ['a', 'b'], labels: [1, 0] },
      { problem: 'q', steps: ['a', 'b', 'c'], labels: [1, 1, 1] },
    ]);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'data', 'stats', file, '--json'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout) as { read: Record<string, unknown> };
    expect(out.read).to.include({ format: 'prmkit', records: 2, samples: 2, rejected: 0 });
  });
});
