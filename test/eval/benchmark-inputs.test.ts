import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProcessBench } from '../../src/data/processbench.js';
import { loadPrmBench } from '../../src/eval/prmbench-data.js';
import { prmBenchMetrics } from '../../src/eval/prmbench-metrics.js';
import { runCli } from '../support/cli.js';

/**
 * Benchmark inputs that used to be counted wrong: a ProcessBench id given twice (counted twice),
 * a PRMBench item with no step (counted silently), a PRMBench class named "__proto__" (lost), and
 * bad-record errors that advised an option the command does not have.
 */
describe('benchmark inputs: duplicated ids, empty items, hostile class names', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-bench-inputs-'));
  const pb = (id: string) => JSON.stringify({ id, generator: 'g', problem: 'p', steps: ['a', 'b'], final_answer_correct: true, label: -1 });

  it('ProcessBench: an id given twice is an error naming the id and the file', async () => {
    const file = join(dir, 'gsm8k.jsonl');
    writeFileSync(file, [pb('gsm8k-0'), pb('gsm8k-1'), pb('gsm8k-0')].join('\n') + '\n');
    const err = await readProcessBench(file).then(() => null, (e: Error) => e);
    expect(err?.message).to.equal(`${file}: sample id "gsm8k-0" appears twice (samples 1 and 3 in reading order); ids must be unique`);
  });

  it('CLI eval processbench: a bad record does not advise --on-bad-record (the command has none)', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, [pb('x-0'), '{"id": "x-1"}'].join('\n') + '\n');
    const scores = join(dir, 'scores.jsonl');
    writeFileSync(scores, JSON.stringify({ id: 'x-0', step_scores: [0.9, 0.8] }) + '\n');
    const r = await runCli(['eval', 'processbench', '--data', file, '--scores', scores, '--out', join(dir, 'out')]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include(`${file}:2`);
    expect(r.stderr).to.not.include('--on-bad-record');
  });

  const item = (idx: number, classification: string, steps: string[]) =>
    JSON.stringify({ idx, classification, original_question: 'q', original_process: ['o1', 'o2'], modified_question: 'q', modified_process: steps, error_steps: [1] });

  it('PRMBench: an item with no step is an error naming file:line', async () => {
    const file = join(dir, 'prmbench.jsonl');
    writeFileSync(file, [item(0, 'circular', ['s1', 's2']), item(1, 'circular', [])].join('\n') + '\n');
    const err = await loadPrmBench(file).then(() => null, (e: Error) => e);
    expect(err?.message).to.match(new RegExp(`${file}:2: field "modified_process": no steps`));
  });

  it('PRMBench: a class named "__proto__" is counted and reported like any other', () => {
    const m = prmBenchMetrics([
      { classification: '__proto__', errorSteps: [1], stepScores: [0.1, 0.9] },
      { classification: 'circular', errorSteps: [2], stepScores: [0.9, 0.1] },
    ], 0.5);
    expect(Object.keys(m.classes)).to.have.members(['__proto__', 'circular']);
    expect(Object.keys(JSON.parse(JSON.stringify(m)).class_details)).to.include('__proto__');
    expect(m.class_details['__proto__'].prmscore).to.be.a('number');
  });
});
