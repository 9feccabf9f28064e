import { expect } from 'chai';
import { runCli } from '../support/cli.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenAIClient } from '../../src/labels/client.js';
import { ResponseCache } from '../../src/labels/cache.js';
import { openStepScorer } from '../../src/eval/model-scorer.js';
import { startSimServer, type SimServer } from '../../src/sim/server.js';
import { simProblems } from '../../src/sim/world.js';
import { checkSolution } from '../../src/sim/check.js';
import { parseProblem } from '../../src/sim/problems.js';
import { simTruthScorer } from '../../src/sim/truth-scorer.js';
import { formatValue } from '../../src/sim/arith.js';
import { PolicySampler } from '../../src/search/policy.js';
import { localReward, remoteReward } from '../../src/search/reward.js';
import { runSearch, type SearchProblem, type SearchResult } from '../../src/search/run.js';
import { startRewardServer } from '../../src/serve/server.js';
import type { SearchMetrics } from '../../src/search/metrics.js';
import { testBackend } from '../support/backend.js';
import { saveTinyPrm } from '../eval/tiny-model.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const WORLD = { problem: { minSteps: 2, maxSteps: 4, ops: ['+', '-'] as ('+' | '-')[], addMax: 3, startMin: 1, startMax: 9, maxValue: 9 }, policy: { strength: 0.1 } };

/** The CLI without blocking: the sim server lives in this process. */
async function prmkit(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await runCli(args);
  return { status: code, stdout, stderr };
}

function readResults(file: string): SearchResult[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as SearchResult);
}

/** Whether a solution is right step by step (the sim truth). */
function processCorrect(problemText: string, steps: string[]): boolean {
  return checkSolution(parseProblem(problemText)!, steps).firstError === -1;
}

describe('prmkit search against the sim policy server', function () {
  let server: SimServer;
  let tmp: string;
  let problems: SearchProblem[];
  let problemsFile: string;

  before(async () => {
    server = await startSimServer({ seed: 3, policy: WORLD.policy });
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-search-'));
    problems = simProblems(12, 5, WORLD).map((p) => ({ id: p.id, problem: p.text, answer: formatValue(p.answer) }));
    problemsFile = join(tmp, 'problems.jsonl');
    writeFileSync(problemsFile, problems.map((p) => JSON.stringify(p)).join('\n') + '\n');
  });

  after(async () => {
    await server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const sampler = (cache?: ResponseCache) => new PolicySampler(new OpenAIClient({ endpoints: [server.url], cache }), { model: 'sim-policy', temperature: 0.8, maxTokens: 1024, maxStepTokens: 256 });

  it('bon, beam and dvts with the sim truth as PRM: budgets counted alike, picks are process-correct when one exists', async () => {
    const out = join(tmp, 'truth');
    const { metrics } = await runSearch({
      problems,
      methods: ['bon', 'beam', 'dvts'],
      ns: [4, 8],
      beamWidth: 2,
      maxSteps: 10,
      aggregator: 'min',
      seed: 1,
      policy: sampler(),
      reward: localReward(simTruthScorer(), 'sim truth'),
      bootstrap: { resamples: 200 },
      out,
    });
    expect(metrics.runs.map((r) => `${r.method}-${r.n}`)).to.deep.equal(['bon-4', 'bon-8', 'beam-4', 'beam-8', 'dvts-4', 'dvts-8']);
    for (const run of metrics.runs) {
      const results = readResults(join(out, `${run.method}-n${run.n}`, 'results.jsonl'));
      expect(results.map((r) => r.id).sort()).to.deep.equal(problems.map((p) => p.id).sort());
      const byId = new Map(problems.map((p) => [p.id, p]));
      for (const r of results) {
        const p = byId.get(r.id)!;
        expect(r.chosen, r.id).to.not.equal(null);
        if (run.method === 'bon') {
          // One request of N whole samples; one PRM pass per sample.
          expect(r.budget).to.include({ policy_requests: 1, prm_passes: run.n, rounds: 1 });
          expect(r.candidates).to.have.length(run.n);
        } else {
          // Step-wise: the first round scores N children; later rounds at most N each.
          expect(r.budget.prm_passes).to.be.at.least(run.n);
          expect(r.budget.prm_passes).to.be.at.most(run.n * r.budget.rounds);
          // beam: one request for the first step, then one per kept beam; dvts: one per open subtree.
          expect(r.budget.policy_requests).to.be.at.most(run.method === 'beam' ? 1 + (run.n / 2) * (r.budget.rounds - 1) : (run.n / 2) * r.budget.rounds);
          expect(r.budget.rounds).to.be.within(1, 10);
          if (run.method === 'dvts') expect(r.candidates).to.have.length(run.n / 2);
        }
        expect(r.budget.policy_tokens).to.be.greaterThan(0);
        // The truth PRM gives 1s only to a process-correct solution: it is picked whenever a
        // finished one exists among the candidates, and its answer is right.
        const steps = r.chosen!.steps;
        const anyCorrect = r.candidates.some((c) => c.finished && c.score === 1);
        if (anyCorrect) {
          expect(processCorrect(p.problem, steps), `${run.method} ${r.id}`).to.equal(true);
          expect(r.chosen!.correct, `${run.method} ${r.id}`).to.equal(true);
        }
      }
      const share = (100 * results.filter((r) => r.chosen?.correct).length) / results.length;
      expect(run.accuracy).to.be.closeTo(share, 1e-9);
      expect(run.accuracy_ci![0]).to.be.at.most(run.accuracy);
    }
    // bon's maj@N and pass@N are over its N samples; a perfect verifier's pick is at most pass@N.
    const bon8 = metrics.runs.find((r) => r.method === 'bon' && r.n === 8)!;
    expect(bon8.accuracy).to.be.at.most(bon8.pass);
    expect(existsSync(join(out, 'accuracy_vs_budget.svg'))).to.equal(true);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).to.match(/\| beam \| 8 \| [\d.]+ \[/);
    expect(report).to.contain('accuracy_vs_budget.svg');
    const svg = readFileSync(join(out, 'accuracy_vs_budget.svg'), 'utf8');
    expect(svg).to.contain('pass@N').and.to.contain('beam search (PRM)').and.to.contain('policy tokens generated per problem');
  });

  it('a local PRM and the same PRM behind prmkit serve give the same search', async function () {
    const modelDir = join(tmp, 'model');
    await saveTinyPrm(modelDir, problems.map((p) => p.problem), { maxPositions: 1024 });
    const scorer = await openStepScorer(modelDir, { backend: testBackend() });
    const rewardServer = await startRewardServer({ model: modelDir, port: 0, backend: testBackend(), log: () => {} });
    try {
      const common = { problems: problems.slice(0, 5), methods: ['beam' as const], ns: [4], beamWidth: 2, maxSteps: 8, aggregator: 'last' as const, seed: 2, bootstrap: { resamples: 0 } };
      await runSearch({ ...common, policy: sampler(), reward: localReward(scorer, 'local'), out: join(tmp, 'local') });
      await runSearch({ ...common, policy: sampler(), reward: remoteReward(rewardServer.url, { batchItems: 3 }), out: join(tmp, 'remote') });
      const local = readResults(join(tmp, 'local', 'beam-n4', 'results.jsonl')).sort((a, b) => a.id.localeCompare(b.id));
      const remote = readResults(join(tmp, 'remote', 'beam-n4', 'results.jsonl')).sort((a, b) => a.id.localeCompare(b.id));
      expect(remote.map((r) => r.chosen!.steps)).to.deep.equal(local.map((r) => r.chosen!.steps));
      remote.forEach((r, i) => r.chosen!.step_scores!.forEach((s, j) => expect(s).to.be.closeTo(local[i].chosen!.step_scores![j], 1e-5)));
      expect(remote.map((r) => r.budget)).to.deep.equal(local.map((r) => r.budget));
    } finally {
      scorer.dispose();
      await rewardServer.close();
    }
  });

  it('the CLI resumes a killed run from its results and cache, ending as an uninterrupted run', async function () {
    const args = (out: string) => [
      'search', '--policy', server.url, '--problems', problemsFile, '--reward', 'sim-truth',
      '--method', 'bon,dvts', '--n', '4', '--beam-width', '2', '--problem-concurrency', '1', '--bootstrap', '100', '--seed', '4', '--out', out,
    ];
    const whole = await prmkit(args(join(tmp, 'whole')));
    expect(whole.status, whole.stderr).to.equal(0);
    expect(whole.stdout).to.match(/\| dvts \| 4 \|/);

    const out = join(tmp, 'killed');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args(out)], { cwd: repoRoot, env: { ...process.env, PRMKIT_NO_PROGRESS: '1' }, stdio: 'ignore' });
    const results = join(out, 'bon-n4', 'results.jsonl');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(results) && readFileSync(results, 'utf8').split('\n').length > 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Complete lines written before the kill (a last line may be torn): fewer than the whole run's.
    const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').length - 1 : 0);
    expect(lines(results) + lines(join(out, 'dvts-n4', 'results.jsonl'))).to.be.below(2 * problems.length);

    const resumed = await prmkit(args(out));
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.match(/already done, resuming/);
    // Problems finished before the kill are not searched again: fewer requests go out than in a whole run.
    const sent = (stderr: string) => Number(/policy requests (\d+) sent/.exec(stderr)?.[1]);
    expect(sent(resumed.stderr)).to.be.below(sent(whole.stderr));
    for (const run of ['bon-n4', 'dvts-n4']) {
      const a = readResults(join(tmp, 'whole', run, 'results.jsonl')).sort((x, y) => x.id.localeCompare(y.id));
      const b = readResults(join(out, run, 'results.jsonl')).sort((x, y) => x.id.localeCompare(y.id));
      expect(b, run).to.deep.equal(a);
    }
    const m1 = JSON.parse(readFileSync(join(tmp, 'whole', 'metrics.json'), 'utf8')) as SearchMetrics;
    const m2 = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as SearchMetrics;
    expect(m2.runs).to.deep.equal(m1.runs);
  });

  it('never mixes results of other settings into a resumed run', async () => {
    const common = { problems: problems.slice(0, 2), methods: ['bon' as const], ns: [2], beamWidth: 2, maxSteps: 5, seed: 1, bootstrap: { resamples: 0 }, out: join(tmp, 'mixed') };
    await runSearch({ ...common, aggregator: 'min', policy: sampler(), reward: localReward(simTruthScorer(), 'sim truth') });
    let err = await runSearch({ ...common, aggregator: 'last', policy: sampler(), reward: localReward(simTruthScorer(), 'sim truth') }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/bon-n2\/settings.json: the results here were made with other settings \(search differ\); use another --out/);
    err = await runSearch({ ...common, aggregator: 'min', policy: sampler(), reward: localReward(simTruthScorer(), 'another PRM') }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/\(reward differ\)/);
  });

  it('refuses bad usage with exit 2 and a message naming the option', async () => {
    const run = (extra: string[]) => prmkit(['search', '--policy', server.url, '--problems', problemsFile, '--out', join(tmp, 'bad'), ...extra]);
    let r = await run(['--reward', 'sim-truth', '--method', 'beam', '--n', '6', '--beam-width', '4']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--n 6: beam needs N to be a multiple of --beam-width 4/);
    r = await run(['--reward', 'sim-truth', '--method', 'mcts']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/unknown method "mcts"/);
    r = await run([]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--model DIR \(local\) or --reward URL/);
  });
});
