import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPrmBench, type PrmBenchReport } from '../../src/eval/run-prmbench.js';
import type { PrmBenchClassMetrics } from '../../src/eval/prmbench-metrics.js';
import { uniform } from './reference-scores.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = join(repoRoot, '..', 'shared', 'data', 'prmbench');

type Counts = { TP: number; FP: number; TN: number; FN: number };
interface RefBlock {
  precision: number;
  recall: number;
  f1: number;
  negative_precision: number;
  negative_recall: number;
  negative_f1: number;
  counts: Counts;
  prmscore?: number;
  n?: number;
}
interface RefCase {
  n: number;
  generator: string;
  seed: number;
  threshold: number;
  overall: RefBlock;
  classes: Record<string, RefBlock>;
}
const reference = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/eval/prmbench_reference.json'), 'utf8')) as {
  n_items: number;
  cases: Record<string, RefCase>;
};

/** The official sentinel -1 (empty denominator) is null here; anything else must match to 1e-9 (in percent). */
function expectFigure(got: number | null, want: number, what: string): void {
  if (want === -1) expect(got, `${what} (official sentinel -1)`).to.equal(null);
  else expect(got, what).to.be.closeTo(100 * want, 1e-9);
}

function expectBlock(got: PrmBenchClassMetrics, want: RefBlock, what: string): void {
  expect({ TP: got.tp, FP: got.fp, TN: got.tn, FN: got.fn }, `${what} counts`).to.deep.equal(want.counts);
  for (const key of ['precision', 'recall', 'f1', 'negative_precision', 'negative_recall', 'negative_f1'] as const) {
    expectFigure(got[key], want[key], `${what} ${key}`);
  }
}

function expectMatches(report: PrmBenchReport, ref: RefCase, what: string): void {
  expect(report.n, `${what} n`).to.equal(reference.n_items);
  expect(report.threshold).to.equal(ref.threshold);
  expectBlock(report.overall, ref.overall, `${what} overall`);
  expectFigure(report.prmscore, ref.overall.prmscore as number, `${what} PRMScore`);
  const errorClasses = Object.keys(ref.classes).filter((c) => c !== 'correct');
  expect(Object.keys(report.classes), `${what} classes`).to.have.members(errorClasses);
  for (const [name, want] of Object.entries(ref.classes)) {
    const got = report.class_details[name];
    expect(got.n, `${what} ${name} n`).to.equal(want.n);
    expectBlock(got, want, `${what} ${name}`);
    if (name !== 'correct') expectFigure(report.classes[name], want.prmscore as number, `${what} ${name} PRMScore`);
  }
}

/**
 * The loader's ids, steps and error steps read straight from the raw files (not through our
 * loader), so the score files do not depend on the code under test.
 */
function rawItems(): { id: string; steps: string[]; errors: Set<number> }[] {
  const out: { id: string; steps: string[]; errors: Set<number> }[] = [];
  const seen = new Set<string>();
  for (const name of readdirSync(dataDir).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dataDir, name), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as Record<string, unknown>;
      const push = (id: string, steps: unknown, errors: number[]) => {
        if (seen.has(id)) return;
        seen.add(id);
        out.push({ id, steps: steps as string[], errors: new Set(errors.map((e) => e - 1)) });
      };
      if (r.classification === 'redundency') push(`correct_${String(r.idx)}`, r.original_process, []);
      push(`${String(r.classification)}_${String(r.idx)}`, r.modified_process, r.error_steps as number[]);
    }
  }
  return out;
}

function scoresOf(kind: string, seed: number, item: { id: string; steps: string[]; errors: Set<number> }): number[] {
  return item.steps.map((_, j) => {
    const u = uniform(seed, item.id, j);
    switch (kind) {
      case 'random':
        return u;
      case 'noisy':
        return item.errors.has(j) ? 0.65 * u : 0.35 + 0.65 * u;
      case 'all-valid':
        return 1;
      case 'none-valid':
        return 0;
      default:
        throw new Error(kind);
    }
  });
}

describe('PRMBench metrics vs the Python reference of the official evaluation', function () {
  let tmp: string;
  const scoreFiles: Record<string, string> = {};

  before(function () {
    if (!existsSync(dataDir)) {
      console.warn(`    skipped: ${dataDir} is absent (PRMBench data)`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-prmbench-ref-'));
    const items = rawItems();
    expect(items).to.have.length(reference.n_items);
    for (const ref of Object.values(reference.cases)) {
      if (scoreFiles[ref.generator]) continue;
      const lines = items.map((it) => JSON.stringify({ id: it.id, step_scores: scoresOf(ref.generator, ref.seed, it) }));
      // Reversed: alignment must go by id, not by position.
      scoreFiles[ref.generator] = join(tmp, `${ref.generator}.jsonl`);
      writeFileSync(scoreFiles[ref.generator], `${lines.reverse().join('\n')}\n`);
    }
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  for (const name of Object.keys(reference.cases)) {
    it(`${name}: counts, F1, negative F1 and PRMScore overall and per class`, async () => {
      const ref = reference.cases[name];
      const { report } = await runPrmBench({ data: dataDir, scores: scoreFiles[ref.generator], threshold: ref.threshold, out: join(tmp, name.replace('/', '-')) });
      expectMatches(report, ref, name);
    });
  }

  it('the loader finds the official item counts: 8 error classes, multi_solutions and the correct originals', async () => {
    const { report } = await runPrmBench({ data: dataDir, scores: scoreFiles.random, out: join(tmp, 'counts') });
    const n = Object.fromEntries(Object.entries(report.class_details).map(([k, v]) => [k, v.n]));
    expect(n.correct).to.equal(n.redundency);
    expect(Object.keys(report.classes)).to.have.length(9);
    expect(report.n_duplicate_lines).to.be.greaterThan(0); // multi_solutions repeats a few idx
    expect(report.groups).to.have.keys(['simplicity', 'soundness', 'sensitivity']);
    const soundness = ['counterfactual', 'step_contradiction', 'domain_inconsistency', 'confidence'].map((c) => report.classes[c] as number);
    expect(report.groups.soundness).to.be.closeTo(soundness.reduce((a, b) => a + b, 0) / 4, 1e-9);
  });

  it('gives the same metrics through the CLI, with a prediction line per item', () => {
    const out = join(tmp, 'cli');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'prmbench', '--data', dataDir, '--scores', scoreFiles.noisy, '--out', out],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| \*\*overall\*\* \(over (all [0-9,]+|[0-9,]+ of [0-9,]+) items\) \|/);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as PrmBenchReport;
    expectMatches(metrics, reference.cases['noisy/0.5'], 'cli noisy/0.5');
    const predictions = readFileSync(join(out, 'predictions.jsonl'), 'utf8').trim().split('\n');
    expect(predictions).to.have.length(reference.n_items);
  });

  it('refuses a score file that misses items or has a wrong step count, naming file:line', () => {
    const short = join(tmp, 'short.jsonl');
    const lines = readFileSync(scoreFiles.random, 'utf8').trim().split('\n');
    writeFileSync(short, `${lines.slice(1).join('\n')}\n`);
    let r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'prmbench', '--data', dataDir, '--scores', short, '--out', join(tmp, 'x')], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/no step_scores for 1 of \d+ samples/);
    const bad = JSON.parse(lines[0]) as { id: string; step_scores: number[] };
    bad.step_scores.push(0.5);
    writeFileSync(short, `${[JSON.stringify(bad), ...lines.slice(1)].join('\n')}\n`);
    r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'prmbench', '--data', dataDir, '--scores', short, '--out', join(tmp, 'x')], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.contain(`${short}:1: field "step_scores"`);
  });
});
