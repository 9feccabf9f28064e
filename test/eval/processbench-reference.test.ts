import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcessBench } from '../../src/eval/run-processbench.js';
import type { ProcessBenchReport } from '../../src/eval/processbench.js';
import { referenceStepScores, type GeneratorKind } from './reference-scores.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = join(repoRoot, '..', 'shared', 'data', 'processbench');
const reference = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/eval/processbench_reference.json'), 'utf8')) as {
  n_samples: number;
  generators: Record<GeneratorKind, { seed: number }>;
  cases: Record<string, ReferenceCase>;
};
const SUBSETS = ['gsm8k', 'math', 'olympiadbench', 'omnimath'];

interface ReferenceCase {
  subsets: Record<string, { n: number; n_error: number; n_correct: number; acc_error: number; acc_correct: number; f1: number }>;
  avg_f1: number;
  extracted_accuracy: number;
  n_extracted: number;
  confusion: number[][];
  threshold: number;
  threshold_subset_f1?: number;
}

function expectMatches(report: ProcessBenchReport, ref: ReferenceCase, what: string): void {
  expect(Object.keys(report.subsets), what).to.deep.equal(SUBSETS);
  for (const name of SUBSETS) {
    const got = report.subsets[name];
    const want = ref.subsets[name];
    expect(got.n, `${what} ${name} n`).to.equal(want.n);
    expect(got.n_error).to.equal(want.n_error);
    expect(got.n_correct).to.equal(want.n_correct);
    expect(got.acc_error, `${what} ${name} acc_error`).to.be.closeTo(want.acc_error, 1e-9);
    expect(got.acc_correct, `${what} ${name} acc_correct`).to.be.closeTo(want.acc_correct, 1e-9);
    expect(got.f1, `${what} ${name} f1`).to.be.closeTo(want.f1, 1e-9);
  }
  expect(report.avg_f1, `${what} avg_f1`).to.be.closeTo(ref.avg_f1, 1e-9);
  expect(report.extracted_accuracy, `${what} extracted`).to.be.closeTo(ref.extracted_accuracy, 1e-9);
  expect(report.n_extracted).to.equal(ref.n_extracted);
  expect(report.confusion.counts, `${what} confusion`).to.deep.equal(ref.confusion);
  expect(report.threshold, `${what} threshold`).to.be.closeTo(ref.threshold, 1e-12);
  if (ref.threshold_subset_f1 !== undefined) expect(report.threshold_subset_f1).to.be.closeTo(ref.threshold_subset_f1, 1e-9);
  expect(report.n).to.equal(reference.n_samples);
}

describe('ProcessBench metrics vs the Python reference (3,400 samples)', function () {
  let tmp: string;
  const scoreFiles = {} as Record<GeneratorKind, string>;

  before(function () {
    if (!existsSync(dataDir)) {
      console.warn(`    skipped: ${dataDir} is absent (ProcessBench reference data)`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-pb-ref-'));
    // Raw JSON on purpose: the score files do not depend on our own reader.
    const samples = SUBSETS.flatMap(
      (s) => JSON.parse(readFileSync(join(dataDir, `${s}.json`), 'utf8')) as { id: string; label: number; steps: string[] }[],
    );
    expect(samples).to.have.length(reference.n_samples);
    for (const kind of Object.keys(reference.generators) as GeneratorKind[]) {
      const { seed } = reference.generators[kind];
      const lines = samples.map((s) =>
        JSON.stringify({ id: s.id, step_scores: referenceStepScores(kind, seed, { id: s.id, label: s.label, nSteps: s.steps.length }) }),
      );
      // Reversed line order: alignment must go by id, not by position.
      scoreFiles[kind] = join(tmp, `${kind}.jsonl`);
      writeFileSync(scoreFiles[kind], `${lines.reverse().join('\n')}\n`);
    }
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  for (const kind of ['random', 'noisy', 'oracle'] as GeneratorKind[]) {
    for (const threshold of [0.5, 'auto'] as const) {
      it(`${kind} scores, threshold ${threshold}`, async () => {
        const { report } = await runProcessBench({ data: dataDir, scores: scoreFiles[kind], threshold, out: join(tmp, `${kind}-${threshold}`) });
        expectMatches(report, reference.cases[`${kind}/${threshold}`], `${kind}/${threshold}`);
        if (kind === 'oracle') expect(report.avg_f1).to.equal(100);
      });
    }
  }

  it('gives the same metrics through the CLI, with predictions for every sample', () => {
    const out = join(tmp, 'cli');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'processbench', '--data', dataDir, '--scores', scoreFiles.noisy, '--threshold', 'auto', '--out', out],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| gsm8k \| 400 \|/);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as ProcessBenchReport;
    expectMatches(metrics, reference.cases['noisy/auto'], 'cli noisy/auto');
    const predictions = readFileSync(join(out, 'predictions.jsonl'), 'utf8').trim().split('\n');
    expect(predictions).to.have.length(reference.n_samples);
    const first = JSON.parse(predictions[0]) as { id: string; predicted: number; step_scores: number[] };
    expect(first.id).to.equal('gsm8k-0');
    expect(first.step_scores.length).to.be.greaterThan(0);
  });

  it('evaluates a subset selection and ignores score lines of the other subsets', async () => {
    const { report } = await runProcessBench({
      data: dataDir,
      subsets: ['math', 'gsm8k'],
      scores: scoreFiles.random,
      threshold: 0.5,
      out: join(tmp, 'subsets'),
    });
    const ref = reference.cases['random/0.5'];
    expect(Object.keys(report.subsets)).to.have.members(['gsm8k', 'math']);
    expect(report.subsets.math.f1).to.be.closeTo(ref.subsets.math.f1, 1e-9);
    expect(report.avg_f1).to.be.closeTo((ref.subsets.math.f1 + ref.subsets.gsm8k.f1) / 2, 1e-9);
  });
});
