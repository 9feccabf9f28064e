import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStepScoresFile } from '../../src/eval/step-scores-file.js';
import { evaluateProcessBench } from '../../src/eval/processbench.js';
import { scoreNamingSamples, type StepScorer } from '../../src/eval/step-scorer.js';
import type { StepSample } from '../../src/data/types.js';

const sample = (id: string, nSteps: number, firstError: number, subset = 'gsm8k'): StepSample => ({
  id,
  problem: 'p',
  steps: Array.from({ length: nSteps }, (_, i) => `step ${i}`),
  firstError,
  source: 'processbench',
  meta: { subset, final_answer_correct: firstError === -1 },
});

describe('step-score files', () => {
  let dir: string;
  const samples = [sample('gsm8k-0', 2, -1), sample('gsm8k-1', 3, 1)];
  const write = (name: string, lines: unknown[]) => {
    const file = join(dir, name);
    writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    return file;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'prmkit-scores-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('aligns score lines with samples by id', async () => {
    const file = write('ok.jsonl', [
      { id: 'gsm8k-1', step_scores: [0.9, 0.1, 0.2] },
      '',
      { id: 'gsm8k-0', step_scores: [0.8, 0.7] },
    ]);
    expect(await readStepScoresFile(file, samples)).to.deep.equal([
      [0.8, 0.7],
      [0.9, 0.1, 0.2],
    ]);
  });

  it('names file:line for unknown ids, duplicates, count mismatches and bad numbers', async () => {
    const cases: [unknown[], RegExp][] = [
      [[{ id: 'gsm8k-9', step_scores: [1] }], /unknown\.jsonl:1: field "id": "gsm8k-9" is not a sample of the data/],
      [
        [
          { id: 'gsm8k-0', step_scores: [1, 1] },
          { id: 'gsm8k-0', step_scores: [1, 1] },
        ],
        /dup\.jsonl:2: field "id": "gsm8k-0" already given at line 1/,
      ],
      [[{ id: 'gsm8k-1', step_scores: [1, 1] }], /count\.jsonl:1: field "step_scores": has 2 scores but sample "gsm8k-1" has 3 steps/],
      [[{ id: 'gsm8k-0', step_scores: [1, 'x'] }], /nan\.jsonl:1: field "step_scores": entry 1 is "x", not a finite number/],
      [[{ id: 'gsm8k-0', scores: [1, 1] }], /field\.jsonl:1: field "step_scores": missing/],
      [['{"id": '], /json\.jsonl:1: invalid JSON/],
    ];
    const names = ['unknown', 'dup', 'count', 'nan', 'field', 'json'];
    for (const [k, [lines, pattern]] of cases.entries()) {
      const file = write(`${names[k]}.jsonl`, lines);
      let error: Error | undefined;
      try {
        await readStepScoresFile(file, samples);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message, names[k]).to.match(pattern);
    }
  });

  it('reports samples without scores, and skips ids of unselected subsets', async () => {
    const file = write('partial.jsonl', [
      { id: 'gsm8k-0', step_scores: [0.8, 0.7] },
      { id: 'math-3', step_scores: [0.1] },
    ]);
    let error: Error | undefined;
    try {
      await readStepScoresFile(file, samples, { ignoredIds: new Set(['math-3']) });
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(/partial\.jsonl: no step_scores for 1 of 2 samples \(first: gsm8k-1\)/);
  });
});

describe('evaluateProcessBench', () => {
  const samples = [sample('gsm8k-0', 2, -1), sample('gsm8k-1', 3, 1), sample('gsm8k-2', 2, 0)];

  it('leaves too-long samples out of the metrics and lists them', () => {
    const { report, predictions } = evaluateProcessBench(samples, [[0.9, 0.8], [0.9, 0.1, 0.9], null], { threshold: 0.5 });
    expect(report.n).to.equal(2);
    expect(report.n_too_long).to.equal(1);
    expect(report.too_long_ids).to.deep.equal(['gsm8k-2']);
    expect(report.subsets.gsm8k.f1).to.equal(100);
    expect(predictions[2]).to.include({ id: 'gsm8k-2', predicted: null, match: null, too_long: true });
    expect(predictions[1]).to.include({ predicted: 1, match: true, final_answer_correct: false });
  });

  it('chooses the auto threshold on the named subset and reports it', () => {
    const { report } = evaluateProcessBench(samples, [[0.9, 0.8], [0.9, 0.3, 0.9], [0.2, 0.9]], { threshold: 'auto' });
    expect(report.threshold_mode).to.equal('auto');
    expect(report.threshold_subset).to.equal('gsm8k');
    expect(report.threshold_subset_f1).to.equal(100);
    expect(report.threshold).to.be.greaterThan(0.3).and.at.most(0.8);
  });

  it('rejects labels outside the steps and score lists of the wrong length', () => {
    expect(() => evaluateProcessBench([sample('x', 2, 2)], [[1, 1]], { threshold: 0.5 })).to.throw(/firstError 2/);
    expect(() => evaluateProcessBench([sample('x', 2, 0)], [[1]], { threshold: 0.5 })).to.throw(/1 step scores for 2 steps/);
  });
});

describe('scoreNamingSamples', () => {
  it('names a sample the scorer rejects by its id', async () => {
    const scorer: StepScorer = {
      backend: 'fake',
      async score() {
        throw Object.assign(new Error('sample 1: field "steps": empty step'), { index: 1 });
      },
      dispose() {},
    };
    const samples = [sample('gsm8k-0', 1, -1), sample('gsm8k-7', 1, -1)];
    let error: Error | undefined;
    try {
      await scoreNamingSamples(scorer, samples);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.equal('sample "gsm8k-7": sample 1: field "steps": empty step');
  });
});
