import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function prmkit(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
  });
}

describe('prmkit eval (CLI contract)', function () {
  let tmp: string;
  let pbDir: string;
  let scores: string;
  let cands: string;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-eval-cli-'));
    pbDir = join(tmp, 'pb');
    mkdirSync(pbDir);
    const rows = [
      { id: 'gsm8k-0', problem: 'p', steps: ['a', 'b'], label: -1, final_answer_correct: true },
      { id: 'gsm8k-1', problem: 'p', steps: ['a', 'b', 'c'], label: 1, final_answer_correct: true },
      { id: 'gsm8k-2', problem: 'p', steps: ['a'], label: 0, final_answer_correct: false },
    ];
    writeFileSync(join(pbDir, 'gsm8k.json'), JSON.stringify(rows));
    scores = join(tmp, 'scores.jsonl');
    writeFileSync(
      scores,
      [
        { id: 'gsm8k-0', step_scores: [0.9, 0.8] },
        { id: 'gsm8k-1', step_scores: [0.9, 0.2, 0.1] },
        { id: 'gsm8k-2', step_scores: [0.6] },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    cands = join(tmp, 'cands.jsonl');
    writeFileSync(
      cands,
      [
        { question: 'q1', answer: 'x #### 4', responses: ['so \\boxed{4}', 'so \\boxed{5}'], s: [[0.9, 0.2], [0.8, 0.7]] },
        { question: 'q2', answer: '7', responses: ['\\boxed{7}', '\\boxed{7.0}'] },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('lists the three benchmarks in --help', () => {
    const r = prmkit(['eval', '--help']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/eval processbench/).and.match(/eval bon/).and.match(/eval sim/);
  });

  it('writes metrics.json and predictions.jsonl and prints the table', () => {
    const out = join(tmp, 'pb-out');
    const r = prmkit(['eval', 'processbench', '--data', pbDir, '--scores', scores, '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    // gsm8k-2 predicted -1 (0.6 >= 0.5): acc_error 50, acc_correct 100
    expect(m.subsets.gsm8k).to.include({ n: 3, acc_error: 50, acc_correct: 100 });
    expect(m.threshold).to.equal(0.5);
    expect(m.extracted_accuracy).to.equal(100);
    expect(r.stdout).to.match(/\| gsm8k \| 3 \| 50\.0 \| 100\.0 \| 66\.7 \|/);
  });

  it('exits 2 on bad usage', () => {
    const cases: [string[], RegExp][] = [
      [['eval', 'processbench', '--data', pbDir, '--out', tmp], /needs --model DIR or --scores FILE/],
      [['eval', 'processbench', '--data', pbDir, '--scores', scores, '--threshold', 'high', '--out', tmp], /--threshold must be a number or "auto"/],
      [['eval', 'processbench', '--data', pbDir, '--scores', scores, '--model', tmp, '--out', tmp], /mutually exclusive/],
      [['eval', 'processbench', '--data', pbDir, '--scores', scores, '--threshold', 'auto', '--subsets', 'math', '--out', tmp], /which --subsets leaves out/],
      [['eval', 'bon', '--candidates', cands, '--scores-field', 's', '--agg', 'min,median', '--out', tmp], /unknown aggregator "median"/],
      [['eval', 'bon', '--candidates', cands, '--scores-field', 's', '--backend', 'tpu', '--out', tmp], /backend/],
    ];
    for (const [args, pattern] of cases) {
      const r = prmkit(args);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(pattern);
    }
  });

  it('exits 1 naming file:line when a line lacks responses or scores', () => {
    let r = prmkit(['eval', 'bon', '--candidates', cands, '--scores-field', 's', '--n', '2', '--out', join(tmp, 'b1')]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/cands\.jsonl:2: field "s": missing: --scores-field needs a score per response/);
    r = prmkit(['eval', 'bon', '--candidates', cands, '--scores-field', 's', '--n', '3', '--out', join(tmp, 'b2')]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/cands\.jsonl:1: field "responses": 2 responses, fewer than n=3/);
  });
});
