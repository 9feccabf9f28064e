/**
 * `npm run bench [-- --quick] [-- --out DIR]`: prmkit's performance on this machine, in one run.
 *
 * - Training tokens/s and peak RSS of the bench model (scripts/bench/bench-config.ts: DESIGN.md's
 *   config) on every backend that loads, each in its own process (scripts/bench/bench-train.ts),
 *   against PyTorch CPU training the same architecture with 2 threads (scripts/bench/bench_torch.py)
 *   in the same run; with several rounds, each figure is the best round (the machine is shared).
 * - Scoring steps/s on ProcessBench with the bench model (scripts/bench/bench-score.ts): one forward
 *   pass per response against one per step prefix, on a subset; without --quick, also all
 *   3,400 samples once on the fastest backend.
 * - The data layer's throughput (scripts/bench/bench-data.ts).
 *
 * - The native backend twice: with prmkit's fused kernels (train.kernels: fused, the default) and
 *   as "<backend> (eager kernels)" with tfjs ops only, so the fused kernels' gain is measured
 *   side by side in one run.
 *
 * `--real` runs the real-size bench instead (scripts/bench/bench-real.ts: a Qwen2.5-0.5B-shaped PRM).
 *
 * Writes DIR/bench.json and DIR/bench.md (DIR defaults to bench-results/). Options:
 *   --quick                 a few minutes: fewer steps and samples, no cpu backend, no full set
 *   --out DIR               where the results go
 *   --backends a,b          backends to try (default: tensorflow-gpu,tensorflow,wasm,cpu)
 *   --rounds N              training rounds (default 2, 1 with --quick)
 *   --no-torch / --no-score / --no-data   skip a part
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AUTO_ORDER, WASM_THREADS_ENV, type ConcreteBackend } from '../../src/backend/backend.js';
import { BENCH, emitResult, loadAverage, runChild, torchArgs } from './bench-config.js';
import type { ScoreBenchResult } from './bench-score.js';
import type { TrainBenchResult } from './bench-train.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Plan {
  quick: boolean;
  out: string;
  backends: ConcreteBackend[];
  rounds: number;
  torch: boolean;
  score: boolean;
  data: boolean;
}

interface TorchResult {
  available: boolean;
  reason?: string;
  train_tokens_per_s?: number;
  ms_per_step?: number;
  threads?: number;
  torch_version?: string;
  cpu_utilisation?: number;
  peak_rss_mb?: number;
  load_average?: number[];
}

const isNative = (backend: ConcreteBackend) => backend === 'tensorflow' || backend === 'tensorflow-gpu';
const eagerName = (backend: ConcreteBackend) => `${backend} (eager kernels)`;

function parsePlan(argv: string[]): Plan {
  const has = (flag: string) => argv.includes(flag);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const known = new Set(['--quick', '--out', '--backends', '--rounds', '--no-torch', '--no-score', '--no-data']);
  argv.forEach((a, i) => {
    if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (see the header of scripts/bench/bench.ts)`);
    if (!a.startsWith('--') && !['--out', '--backends', '--rounds'].includes(argv[i - 1])) throw new Error(`unexpected argument ${a}`);
  });
  const quick = has('--quick');
  const backends = (value('--backends') ?? AUTO_ORDER.join(',')).split(',').map((b) => b.trim()) as ConcreteBackend[];
  for (const b of backends) if (!AUTO_ORDER.includes(b)) throw new Error(`--backends: unknown backend ${b} (choose from ${AUTO_ORDER.join(', ')})`);
  const rounds = Number(value('--rounds') ?? (quick ? 1 : 2));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  return {
    quick,
    out: resolve(value('--out') ?? join(ROOT, 'bench-results')),
    backends,
    rounds,
    torch: !has('--no-torch'),
    score: !has('--no-score'),
    data: !has('--no-data'),
  };
}

const tsx = (script: string, args: string[]) => ['--import', 'tsx', join(ROOT, 'scripts', 'bench', script), ...args];

function trainSteps(plan: Plan, backend: ConcreteBackend): { warmup: number; steps: number } {
  // One step of the pure-JS cpu backend takes minutes; it gets one timed step.
  if (backend === 'cpu') return { warmup: 0, steps: 1 };
  return plan.quick ? { warmup: 2, steps: 4 } : { warmup: 3, steps: 10 };
}

async function benchTorch(plan: Plan, threads: number): Promise<TorchResult> {
  const { warmup, steps } = plan.quick ? { warmup: 2, steps: 4 } : { warmup: 3, steps: 10 };
  const args = [join(ROOT, 'scripts', 'bench', 'bench_torch.py'), ...torchArgs(), '--threads', String(threads), '--warmup', String(warmup), '--steps', String(steps)];
  try {
    const r = await runChild<Record<string, unknown>>('python3', args);
    return { ...(r as unknown as TorchResult), available: true, load_average: loadAverage() };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

function better<T extends { available: boolean; train_tokens_per_s?: number }>(a: T | undefined, b: T): T {
  if (!a || !a.available) return b;
  if (!b.available) return a;
  return (b.train_tokens_per_s ?? 0) > (a.train_tokens_per_s ?? 0) ? b : a;
}

function round(x: number | undefined, digits = 1): number | undefined {
  if (x === undefined || !Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function main(): Promise<void> {
  // `npm run bench -- --quick -- --out DIR` passes the second `--` through.
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  if (argv.includes('--real')) {
    const { runRealBench } = await import('./bench-real.js');
    return runRealBench(argv);
  }
  const plan = parsePlan(argv);
  mkdirSync(plan.out, { recursive: true });
  const started = Date.now();
  const loadBefore = loadAverage();
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  log(`${plan.quick ? 'quick' : 'full'} run, load average ${loadBefore.join(' ')}, results in ${plan.out}`);

  // Training: every backend and torch, `rounds` times, interleaved so that a burst of load on
  // the shared machine hits all of them alike; each keeps its best round.
  const train = new Map<ConcreteBackend, TrainBenchResult>();
  const trainRounds = new Map<string, number[]>();
  let torch: TorchResult | undefined;
  let torchOneThread: TorchResult | undefined;
  let wasmThreaded: TrainBenchResult | undefined;
  // The native backends with train.kernels: eager (tfjs ops only), beside their fused default.
  const nativeEager = new Map<ConcreteBackend, { train?: TrainBenchResult; score?: ScoreBenchResult }>();
  const record = (name: string, tps: number | undefined) => {
    if (tps !== undefined) trainRounds.set(name, [...(trainRounds.get(name) ?? []), Math.round(tps)]);
  };
  for (let r = 1; r <= plan.rounds; r++) {
    if (plan.torch) {
      log(`round ${r}: torch (2 threads)`);
      const t = await benchTorch(plan, 2);
      record('torch', t.train_tokens_per_s);
      torch = better(torch, t);
      log(`round ${r}: torch (1 thread)`);
      const t1 = await benchTorch(plan, 1);
      record('torch_1_thread', t1.train_tokens_per_s);
      torchOneThread = better(torchOneThread, t1);
    }
    for (const backend of plan.backends) {
      if (train.get(backend)?.available === false) continue; // did not load in round 1
      if (backend === 'cpu' && (plan.quick || r > 1)) continue;
      const { warmup, steps } = trainSteps(plan, backend);
      log(`round ${r}: train on ${backend} (${warmup} warmup + ${steps} timed steps)`);
      const result = await runChild<TrainBenchResult>(process.execPath, tsx('bench-train.ts', ['--backend', backend, '--warmup', String(warmup), '--steps', String(steps)]), { [WASM_THREADS_ENV]: '' });
      record(backend, result.train_tokens_per_s);
      train.set(backend, better(train.get(backend), result));
      if (isNative(backend) && result.available) {
        log(`round ${r}: train on ${backend} with the eager kernels`);
        const eager = await runChild<TrainBenchResult>(process.execPath, tsx('bench-train.ts', ['--backend', backend, '--warmup', String(warmup), '--steps', String(steps), '--kernels', 'eager']));
        record(eagerName(backend), eager.train_tokens_per_s);
        nativeEager.set(backend, { train: better(nativeEager.get(backend)?.train, eager) });
      }
      if (backend === 'wasm' && result.available && availableParallelism() > 1) {
        // The opt-in threaded wasm build (PRMKIT_WASM_THREADS), for comparison.
        const threads = Math.min(8, availableParallelism());
        log(`round ${r}: train on wasm with ${threads} threads`);
        const threaded = await runChild<TrainBenchResult>(process.execPath, tsx('bench-train.ts', ['--backend', 'wasm', '--warmup', String(warmup), '--steps', String(steps)]), { [WASM_THREADS_ENV]: String(threads) });
        record('wasm_threaded', threaded.train_tokens_per_s);
        wasmThreaded = better(wasmThreaded, threaded);
      }
    }
  }

  // Scoring: a subset on every backend that trains, the whole benchmark on the fastest.
  const score = new Map<ConcreteBackend, ScoreBenchResult>();
  if (plan.score) {
    for (const backend of plan.backends) {
      if (!train.get(backend)?.available && train.has(backend)) continue;
      if (backend === 'cpu' && plan.quick) continue;
      const [samples, prefixSamples] = backend === 'cpu' ? [3, 1] : plan.quick ? [24, 6] : [340, 60];
      log(`score on ${backend} (${samples} responses, ${prefixSamples} by prefixes)`);
      score.set(backend, await runChild<ScoreBenchResult>(process.execPath, tsx('bench-score.ts', ['--backend', backend, '--samples', String(samples), '--prefix-samples', String(prefixSamples)]), { [WASM_THREADS_ENV]: '' }));
      const eager = nativeEager.get(backend);
      if (eager) {
        log(`score on ${backend} with the eager kernels`);
        eager.score = await runChild<ScoreBenchResult>(process.execPath, tsx('bench-score.ts', ['--backend', backend, '--samples', String(samples), '--prefix-samples', String(prefixSamples), '--kernels', 'eager']));
      }
    }
  }
  const scored = [...score.values()].filter((s) => s.available && s.one_forward_per_response);
  const fastestScorer = scored.sort((a, b) => b.one_forward_per_response!.steps_per_s - a.one_forward_per_response!.steps_per_s)[0];
  let full: ScoreBenchResult | undefined;
  if (plan.score && !plan.quick && fastestScorer) {
    log(`score all ProcessBench samples on ${fastestScorer.backend}`);
    full = await runChild<ScoreBenchResult>(process.execPath, tsx('bench-score.ts', ['--backend', fastestScorer.backend, '--samples', '0', '--prefix-samples', '20']));
  }

  let data: Record<string, unknown> | undefined;
  if (plan.data) {
    const samples = plan.quick ? 50_000 : 1_000_000;
    log(`data layer, ${samples} samples`);
    data = await runChild<Record<string, unknown>>(process.execPath, tsx('bench.ts', ['--data-child', String(samples)]));
  }

  const torchTps = torch?.available ? torch.train_tokens_per_s : undefined;
  /** One row of the results: a backend's (or variant's) training and scoring figures. */
  const entry = (name: string, t: TrainBenchResult | undefined, s: ScoreBenchResult | undefined) => ({
    train_tokens_per_s: round(t?.train_tokens_per_s),
    score_steps_per_s: round(s?.one_forward_per_response?.steps_per_s, 2),
    peak_rss_mb: t?.peak_rss_mb,
    ratio_vs_torch: torchTps && t?.train_tokens_per_s ? round(t.train_tokens_per_s / torchTps, 3) : undefined,
    ms_per_step: round(t?.ms_per_step),
    threads: t?.threads,
    cpu_utilisation: round(t?.cpu_utilisation, 2),
    kernels: t?.kernels,
    train_rounds_tokens_per_s: trainRounds.get(name),
    tensors_flat: t?.num_tensors ? t.num_tensors.every((n) => n === t.num_tensors![0]) : undefined,
    final_loss: t?.final_loss,
    score: s?.available ? { per_response: s.one_forward_per_response, per_prefix: s.one_forward_per_prefix, speedup: round(s.speedup, 2), max_score_difference: s.max_score_difference, peak_rss_mb: s.peak_rss_mb } : undefined,
  });
  const backends: Record<string, unknown> = {};
  const unavailable: Record<string, string> = {};
  for (const backend of plan.backends) {
    const t = train.get(backend);
    const s = score.get(backend);
    if (t && !t.available) {
      unavailable[backend] = t.reason ?? 'unknown';
      continue;
    }
    if (!t && !s) continue;
    backends[backend] = {
      ...entry(backend, t, s),
      ...(backend === 'cpu' && plan.quick ? { skipped: 'cpu is skipped with --quick (one training step takes minutes)' } : {}),
    };
  }
  for (const [backend, { train: t, score: s }] of nativeEager) backends[eagerName(backend)] = entry(eagerName(backend), t, s);
  const ratios = Object.entries(backends)
    .map(([name, b]) => [name, (b as { ratio_vs_torch?: number }).ratio_vs_torch] as const)
    .filter((e): e is readonly [string, number] => e[1] !== undefined);
  const best = ratios.sort((a, b) => b[1] - a[1])[0];
  const result = {
    backends,
    torch: torch?.available
      ? { train_tokens_per_s: round(torch.train_tokens_per_s), ms_per_step: round(torch.ms_per_step), threads: torch.threads, torch_version: torch.torch_version, cpu_utilisation: round(torch.cpu_utilisation, 2), peak_rss_mb: round(torch.peak_rss_mb, 0), train_rounds_tokens_per_s: trainRounds.get('torch') }
      : { available: false, reason: torch?.reason ?? 'skipped (--no-torch)' },
    best_ratio_vs_torch: best?.[1] ?? null,
    best_backend: best?.[0] ?? null,
    wasm_ratio_vs_torch: (backends.wasm as { ratio_vs_torch?: number } | undefined)?.ratio_vs_torch ?? null,
    torch_1_thread: torchOneThread?.available
      ? { train_tokens_per_s: round(torchOneThread.train_tokens_per_s), ms_per_step: round(torchOneThread.ms_per_step), train_rounds_tokens_per_s: trainRounds.get('torch_1_thread') }
      : undefined,
    wasm_threaded: wasmThreaded?.available
      ? {
          threads: wasmThreaded.threads,
          train_tokens_per_s: round(wasmThreaded.train_tokens_per_s),
          ms_per_step: round(wasmThreaded.ms_per_step),
          ratio_vs_torch: torchTps && wasmThreaded.train_tokens_per_s ? round(wasmThreaded.train_tokens_per_s / torchTps, 3) : undefined,
          peak_rss_mb: wasmThreaded.peak_rss_mb,
          train_rounds_tokens_per_s: trainRounds.get('wasm_threaded'),
        }
      : undefined,
    unavailable,
    scoring: fastestScorer
      ? {
          backend: fastestScorer.backend,
          dataset: fastestScorer.dataset,
          subset: { per_response: fastestScorer.one_forward_per_response, per_prefix: fastestScorer.one_forward_per_prefix, speedup: round(fastestScorer.speedup, 2) },
          full: full?.one_forward_per_response,
          full_prefix_sample: full?.one_forward_per_prefix,
        }
      : undefined,
    data,
    config: { ...BENCH, dtype: 'float32', optimizer: 'AdamW', data: 'random tokens' },
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      load_average_before: loadBefore,
      load_average_after: loadAverage(),
    },
    quick: plan.quick,
    rounds: plan.rounds,
    seconds: Math.round((Date.now() - started) / 1000),
    date: new Date().toISOString(),
  };
  writeFileSync(join(plan.out, 'bench.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(plan.out, 'bench.md'), renderMarkdown(result));
  log(`done in ${result.seconds} s: ${join(plan.out, 'bench.json')}, ${join(plan.out, 'bench.md')}`);
}

type BenchResult = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function renderMarkdown(r: BenchResult): string {
  const fmt = (x: unknown, digits = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
  const lines: string[] = [];
  lines.push(`# prmkit bench (${r.quick ? 'quick' : 'full'}, ${r.date})`, '');
  lines.push(
    `Machine: ${r.machine.cpus} CPUs (${r.machine.cpu_model}), Node ${r.machine.node}; load average ${r.machine.load_average_before.join(' ')} before, ${r.machine.load_average_after.join(' ')} after (the machine is shared: compare figures of one run only).`,
    '',
  );
  const c = r.config;
  lines.push(`## Training (vocab ${c.vocab}, hidden ${c.hidden}, ${c.layers} layers, ${c.heads} heads, MLP ${c.intermediate}, sequence ${c.seqLen}, batch ${c.batch}, AdamW, fp32)`, '');
  lines.push('| | tokens/s | ms/step | vs torch | peak RSS MB | threads | CPU use |', '|---|---|---|---|---|---|---|');
  for (const [name, b] of Object.entries<BenchResult>(r.backends)) {
    if (b.train_tokens_per_s === undefined) continue;
    lines.push(`| ${name} | ${fmt(b.train_tokens_per_s)} | ${fmt(b.ms_per_step)} | ${fmt(b.ratio_vs_torch, 2)} | ${fmt(b.peak_rss_mb)} | ${b.threads ?? ''} | ${fmt(b.cpu_utilisation, 2)} |`);
  }
  if (r.torch.train_tokens_per_s !== undefined) {
    lines.push(`| PyTorch ${r.torch.torch_version} CPU, ${r.torch.threads} threads | ${fmt(r.torch.train_tokens_per_s)} | ${fmt(r.torch.ms_per_step)} | 1.00 | ${fmt(r.torch.peak_rss_mb)} | ${r.torch.threads} | ${fmt(r.torch.cpu_utilisation, 2)} |`);
  }
  if (r.wasm_threaded) lines.push(`| wasm, threaded build (${r.wasm_threaded.threads} threads, opt-in) | ${fmt(r.wasm_threaded.train_tokens_per_s)} | ${fmt(r.wasm_threaded.ms_per_step)} | ${fmt(r.wasm_threaded.ratio_vs_torch, 2)} | ${fmt(r.wasm_threaded.peak_rss_mb)} | ${r.wasm_threaded.threads} | |`);
  if (r.torch_1_thread) lines.push(`| PyTorch CPU, 1 thread (reference) | ${fmt(r.torch_1_thread.train_tokens_per_s)} | ${fmt(r.torch_1_thread.ms_per_step)} | | | 1 | |`);
  lines.push('', `Best backend vs PyTorch: **${fmt(r.best_ratio_vs_torch, 2)}** (${r.best_backend ?? 'n/a'}); wasm: **${fmt(r.wasm_ratio_vs_torch, 2)}**. Best of ${r.rounds} round(s).`);
  for (const [name, reason] of Object.entries<string>(r.unavailable)) lines.push(`- ${name} unavailable: ${reason}`);
  if (r.scoring) {
    const s = r.scoring;
    lines.push('', `## Scoring (ProcessBench, ${s.dataset.samples} samples / ${s.dataset.steps} steps, bench model, word-level tokenizer)`, '');
    lines.push('| backend | per response: steps/s | per prefix: steps/s | speedup |', '|---|---|---|---|');
    for (const [name, b] of Object.entries<BenchResult>(r.backends)) {
      if (!b.score) continue;
      lines.push(`| ${name} | ${fmt(b.score.per_response.steps_per_s, 1)} (${b.score.per_response.samples} samples) | ${fmt(b.score.per_prefix.steps_per_s, 1)} (${b.score.per_prefix.samples} samples) | ${fmt(b.score.speedup, 2)}x |`);
    }
    if (s.full) lines.push('', `All ${s.full.samples} samples on ${s.backend}, one forward per response: ${fmt(s.full.seconds, 1)} s (${fmt(s.full.steps_per_s, 1)} steps/s, ${fmt(s.full.tokens / s.full.seconds)} tokens/s).`);
  }
  if (r.data) {
    const d = r.data;
    lines.push('', '## Data layer', '', `${d.samples} samples JSONL -> validate -> consensus filter -> Arrow in ${fmt(d.pipelineSeconds, 1)} s (${fmt(d.samplesPerSecond)} samples/s), peak RSS ${fmt(d.peakRssMB)} MB.`);
  }
  return lines.join('\n') + '\n';
}

if (process.argv[2] === '--data-child') {
  const { runDataBench } = await import('./bench-data.js');
  emitResult(await runDataBench({ samples: Number(process.argv[3]), log: (line) => process.stderr.write(`${line}\n`) }));
} else {
  await main();
}
