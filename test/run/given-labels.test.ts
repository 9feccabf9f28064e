import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { labelsFromFirstError } from '../../src/data/adapter.js';
import { readStageMarker } from '../../src/run/context.js';
import type { LabelsSummary } from '../../src/run/labels-stage.js';
import { runRecipe } from '../../src/run/run.js';

/**
 * labels.method given on ProcessBench-style records (a first-error index, no step labels): the
 * labels they imply, 1 before the error and 0 at it, later steps dropped, as MC labels stop.
 */
describe('run: given labels from a first-error index', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'prmkit-given-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('labelsFromFirstError: 1s then a 0 at the error; all 1 without one', () => {
    expect(labelsFromFirstError(4, 2)).to.deep.equal([1, 1, 0]);
    expect(labelsFromFirstError(4, 0)).to.deep.equal([0]);
    expect(labelsFromFirstError(3, -1)).to.deep.equal([1, 1, 1]);
  });

  it('labels the records of a ProcessBench file and hands them to training', async () => {
    const records = [
      { id: 'gsm8k-0', problem: 'p0', steps: ['a', 'b', 'c', 'd'], label: 2, final_answer_correct: false },
      { id: 'gsm8k-1', problem: 'p1', steps: ['a', 'b'], label: -1, final_answer_correct: true },
      { id: 'gsm8k-2', problem: 'p2', steps: ['a', 'b', 'c'], label: 0, final_answer_correct: false },
    ];
    const data = join(dir, 'gsm8k.json');
    writeFileSync(data, JSON.stringify(records));
    const recipe = join(dir, 'given.yaml');
    // Stop after the labels stage: a recipe without train/eval sections has nothing else to run.
    writeFileSync(recipe, YAML.stringify({ name: 'given', data: { source: 'file', path: 'gsm8k.json' }, labels: { method: 'given' } }));
    const out = join(dir, 'run');
    await runRecipe({ recipePath: recipe, out, log: () => {}, progress: false });
    const labels = readStageMarker<LabelsSummary>(out, 'labels')!.summary;
    expect(labels.train_file).to.equal('labels/given.jsonl');
    expect(labels.sources.given.output).to.equal(3);
    const lines = readFileSync(join(out, labels.train_file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; steps: string[]; labels: number[] });
    expect(lines.map((l) => [l.id, l.steps.length, l.labels])).to.deep.equal([
      ['gsm8k-0', 3, [1, 1, 0]],
      ['gsm8k-1', 2, [1, 1]],
      ['gsm8k-2', 1, [0]],
    ]);
  });
});
