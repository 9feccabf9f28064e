import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonlAll } from '../../src/data/jsonl.js';
import { orderFields } from '../../src/data/prmkit.js';
import type { StepSample } from '../../src/data/types.js';
import { validateStepSample } from '../../src/data/validate.js';
import { writeJsonlRecords } from '../../src/data/write.js';
import { ResponseCache } from '../../src/labels/cache.js';
import { consensus, type ConsensusStats } from '../../src/labels/consensus.js';
import { labelJudge } from '../../src/labels/judge.js';
import { labelMc, type McStats } from '../../src/labels/mc.js';
import { startSimServer, type SimServer } from '../../src/sim/server.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';
import { percent } from '../../src/util/format.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

async function records(file: string): Promise<StepSample[]> {
  return (await readJsonlAll(file)).map((l) => l.value as StepSample);
}

/** Runs the CLI from source; resolves with its exit code (or signal). */
function runCli(args: string[], onSpawn?: (kill: () => void) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
    onSpawn?.(() => child.kill('SIGKILL'));
  });
}

describe('label pipeline over HTTP against the sim server', function () {
  let dir: string;
  let server: SimServer;
  let input: string;
  let small: string;
  const solutions = simSolutions(simProblems(300, 101), 1, 102);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prmkit-labels-'));
    input = join(dir, 'solutions.jsonl');
    small = join(dir, 'small.jsonl');
    await writeJsonlRecords(input, solutions, orderFields);
    await writeJsonlRecords(small, solutions.slice(0, 60), orderFields);
    server = await startSimServer({ seed: 0 });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  let mcLinear: McStats;
  let cons: ConsensusStats;

  it('labels with MC and the judge, then keeps their consensus: more precise than either, ~half retained', async () => {
    mcLinear = await labelMc({ input, out: join(dir, 'mc.jsonl'), endpoint: server.url, model: 'sim-policy', progress: false });
    const judge = await labelJudge({ input, out: join(dir, 'judge.jsonl'), endpoint: server.url, model: 'sim-judge', progress: false });
    cons = await consensus({ mc: join(dir, 'mc.jsonl'), judge: join(dir, 'judge.jsonl'), out: join(dir, 'consensus.jsonl'), dropped: join(dir, 'dropped.jsonl'), progress: false });

    const [mc, jd, co] = [cons.quality.mc.truth!, cons.quality.judge.truth!, cons.quality.consensus.truth!];
    console.log(
      `      first-error precision / recall vs truth: MC ${percent(mc.precision)} / ${percent(mc.recall)}, judge ${percent(jd.precision)} / ${percent(jd.recall)}, ` +
        `consensus ${percent(co.precision)} / ${percent(co.recall)}; retention ${percent(cons.retention)} (${cons.kept}/${cons.samples})`,
    );
    expect(co.precision!).to.be.greaterThan(mc.precision!);
    expect(co.precision!).to.be.greaterThan(jd.precision!);
    expect(cons.retention!).to.be.within(0.4, 0.65);
    // The paper's world: MC is worse than the judge where the policy recovers, better where the judge is blind.
    expect(mc.byKind.arithmetic.accuracy).to.be.lessThan(jd.byKind.arithmetic.accuracy - 0.2);
    expect(mc.byKind.wrong_operand.accuracy).to.be.greaterThan(jd.byKind.wrong_operand.accuracy + 0.2);

    expect(mcLinear.output).to.equal(solutions.length);
    expect(mcLinear.client.requests).to.equal(mcLinear.prefixesEvaluated);
    expect(judge.client.requests).to.equal(solutions.length + judge.parseRetries);
    const kept = await records(join(dir, 'consensus.jsonl'));
    const dropped = await records(join(dir, 'dropped.jsonl'));
    expect(kept.length + dropped.length).to.equal(solutions.length);
    expect(kept.length).to.equal(cons.kept);
    for (const d of dropped) expect((d.meta.consensus as { reason: string }).reason).to.be.oneOf(['disagree', 'judge_unparsable']);
    const agreeByPosition = Object.values(cons.agreement.byPosition).reduce((n, r) => n + r.agree, 0);
    expect(agreeByPosition).to.equal(cons.kept);
  });

  it('writes MC labels: soft shares, hard labels, steps after the first negative dropped', async () => {
    const out = await records(join(dir, 'mc.jsonl'));
    const byId = new Map(solutions.map((s) => [s.id, s]));
    for (const r of out) {
      expect(validateStepSample(r), r.id).to.deep.equal([]);
      const original = byId.get(r.id)!;
      const soft = r.meta.softLabels as number[];
      expect(r.steps).to.deep.equal(original.steps.slice(0, r.firstError === -1 ? original.steps.length : r.firstError! + 1));
      expect(soft).to.have.length(r.steps.length);
      soft.forEach((s, i) => expect(r.labels![i]).to.equal(s > 0 ? 1 : 0));
      expect(r.meta.truth).to.deep.equal(original.meta.truth);
    }
  });

  it('binary search (OmegaPRM) finds the first errors with fewer rollouts, and says how many it saved', async () => {
    const binary = await labelMc({ input, out: join(dir, 'mc-binary.jsonl'), endpoint: server.url, model: 'sim-policy', search: 'binary', progress: false });
    const linear = await records(join(dir, 'mc.jsonl'));
    const viaBinary = await records(join(dir, 'mc-binary.jsonl'));
    const same = viaBinary.filter((r, i) => r.firstError === linear[i].firstError).length;
    console.log(
      `      rollouts: linear ${mcLinear.rollouts}, binary ${binary.rollouts} (binary's own linear-equivalent ${binary.rolloutsLinear}, saved ${binary.rolloutsSaved}); same first error on ${percent(same / linear.length)}`,
    );
    expect(binary.rolloutsSaved).to.equal(binary.rolloutsLinear - binary.rollouts);
    expect(binary.rolloutsSaved).to.be.greaterThan(0);
    expect(binary.rollouts).to.be.lessThan(0.8 * mcLinear.rollouts);
    expect(same / linear.length).to.be.greaterThan(0.85);
  });

  it('retries unparsable judge replies with a new seed and records the hopeless ones as unparsable, never guessing', async () => {
    const mute = await startSimServer({ seed: 0, judge: { unparsableRate: 1 } });
    const shaky = await startSimServer({ seed: 0, judge: { unparsableRate: 0.5 } });
    try {
      const none = await labelJudge({ input: small, out: join(dir, 'judge-mute.jsonl'), endpoint: mute.url, model: 'j', progress: false });
      expect(none.unparsable).to.equal(60);
      expect(none.client.requests).to.equal(60 * 3);
      for (const r of await records(join(dir, 'judge-mute.jsonl'))) {
        expect(r.firstError).to.equal(undefined);
        expect(r.labels).to.equal(undefined);
        expect(r.meta.judge).to.include({ status: 'unparsable', attempts: 3 });
      }
      const some = await labelJudge({ input: small, out: join(dir, 'judge-shaky.jsonl'), endpoint: shaky.url, model: 'j', progress: false });
      expect(some.parseRetries).to.be.greaterThan(10);
      expect(some.unparsable).to.be.within(1, 20);
      const c = await consensus({ mc: join(dir, 'mc.jsonl'), judge: join(dir, 'judge-shaky.jsonl'), out: join(dir, 'c2.jsonl'), progress: false });
      expect(c.dropReasons.judge_unparsable).to.equal(some.unparsable);
      expect(c.dropReasons.no_judge_label).to.equal(solutions.length - 60);
    } finally {
      await mute.close();
      await shaky.close();
    }
  });

  it('gives the same labels under fault injection (20% 500/429, latency, malformed JSON), and counts the retries', async () => {
    const faulty = await startSimServer({ seed: 0, faultRate: 0.2, latencyMs: 20, malformedRate: 0.05 });
    try {
      const opts = { endpoint: server.url, model: 'sim-policy', progress: false, backoffMs: 5, maxBackoffMs: 50, retries: 20 };
      await labelMc({ ...opts, input: small, out: join(dir, 'mc-clean.jsonl') });
      const flaky = await labelMc({ ...opts, endpoint: faulty.url, input: small, out: join(dir, 'mc-faulty.jsonl') });
      await labelJudge({ ...opts, input: small, out: join(dir, 'judge-clean.jsonl') });
      const flakyJudge = await labelJudge({ ...opts, endpoint: faulty.url, input: small, out: join(dir, 'judge-faulty.jsonl') });
      expect(await readFile(join(dir, 'mc-faulty.jsonl'), 'utf8')).to.equal(await readFile(join(dir, 'mc-clean.jsonl'), 'utf8'));
      expect(await readFile(join(dir, 'judge-faulty.jsonl'), 'utf8')).to.equal(await readFile(join(dir, 'judge-clean.jsonl'), 'utf8'));
      const c = flaky.client;
      console.log(`      faults: ${c.retries} MC retries (500x${c.httpErrors['500'] ?? 0}, 429x${c.httpErrors['429'] ?? 0}, malformed ${c.malformed}); judge ${flakyJudge.client.retries} retries`);
      expect(c.retries).to.be.greaterThan(0);
      expect(c.httpErrors['500']).to.be.greaterThan(0);
      expect(c.httpErrors['429']).to.be.greaterThan(0);
      expect(c.retries).to.equal(c.malformed + c.httpErrors['500'] + c.httpErrors['429']);
      expect(c.failures).to.equal(0);
      expect(flakyJudge.client.retries).to.be.greaterThan(0);
    } finally {
      await faulty.close();
    }
  });

  it('resumes after SIGKILL: no request answered before is sent again, and the output equals an uninterrupted run', async () => {
    const reference = join(dir, 'mc-reference.jsonl');
    const ref = await labelMc({ input: small, out: reference, endpoint: server.url, model: 'sim-policy', progress: false });
    const needed = ref.client.requests;
    const slow = await startSimServer({ seed: 0, latencyMs: 30 });
    const cache = join(dir, 'kill-cache');
    const out = join(dir, 'mc-resumed.jsonl');
    const args = ['label', 'mc', '--input', small, '--endpoint', slow.url, '--model', 'sim-policy', '--cache', cache, '--concurrency', '4', '--out', out];
    try {
      const killed = await runCli(args, (kill) => {
        const poll = setInterval(() => {
          if (slow.stats.answered >= needed / 2) {
            clearInterval(poll);
            kill();
          }
        }, 2);
      });
      expect(killed.signal).to.equal('SIGKILL');
      const persisted = await ResponseCache.open(cache);
      const have = new Set(persisted.keys());
      await persisted.close();
      expect(have.size).to.be.greaterThan(0);
      expect(have.size).to.be.lessThan(needed);

      slow.resetStats();
      const resumed = await runCli(args);
      expect(resumed.code, resumed.stderr).to.equal(0);
      const resent = [...slow.stats.byKey.keys()].filter((k) => have.has(k));
      console.log(`      killed after ${have.size}/${needed} requests were cached; the rerun sent ${slow.stats.answered}, repeats of cached ones: ${resent.length}`);
      expect(resent).to.deep.equal([]);
      expect(slow.stats.answered).to.equal(needed - have.size);
      expect(await readFile(out, 'utf8')).to.equal(await readFile(reference, 'utf8'));
    } finally {
      await slow.close();
    }
  });
});
