/**
 * Data-parallel training at real size with and without optimizer sharding: N workers on loopback
 * (the --workers launcher), each a scripts/bench/bench-real-train.ts process training its share
 * of every [batch, seq] batch of the model made by scripts/bench/make_real_prm.py, with
 * train.shard_optimizer = --shard. Prints one JSON object: per rank, its peak RSS and step
 * times, and rank 0's collective seconds per step.
 *
 *   node --import tsx scripts/bench/bench-sharded-train.ts --model DIR --workers 2 --shard states+gradients
 *        [--batch 2] [--seq 512] [--steps 2] [--warmup 1] [--recompute]
 */
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { launchLocalWorkers } from '../../src/distributed/launch.js';
import { argValue, emitResult } from './bench-config.js';
import type { RealTrainResult } from './bench-real-train.js';

const model = argValue('model');
if (!model) throw new Error('--model DIR is required (make it with scripts/bench/make_real_prm.py)');
const workers = Number(argValue('workers', '2'));
const worker = fileURLToPath(new URL('./bench-real-train.ts', import.meta.url));
const args = ['--import', 'tsx', worker, '--model', model, '--shard', argValue('shard', 'none') as string];
for (const name of ['batch', 'seq', 'steps', 'warmup']) if (argValue(name) !== undefined) args.push(`--${name}`, argValue(name) as string);
if (process.argv.includes('--recompute')) args.push('--recompute');

let stdout = '';
const result = await launchLocalWorkers({
  workers,
  args,
  env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', PRMKIT_NO_PROGRESS: '1' },
  stdout: new Writable({
    write(chunk: Buffer, _enc, done) {
      stdout += chunk.toString();
      done();
    },
  }),
});
if (result.exitCode !== 0) throw new Error(`the workers failed (exit ${result.exitCode}); their output is above`);
const ranks = stdout
  .split('\n')
  .filter((l) => /^\[rank \d+\] \{/.test(l))
  .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as RealTrainResult)
  .sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));
emitResult({
  workers,
  shard_optimizer: ranks[0]?.shard_optimizer,
  ranks: ranks.map((r) => ({
    rank: r.rank,
    peak_rss_mb: r.peak_rss_mb,
    rss_after_load_mb: r.rss_after_load_mb,
    peak_rss_after_save_mb: r.peak_rss_after_save_mb,
    step_s: r.step_s,
    collective_s: r.collective_s,
    rss_per_step_mb: r.rss_per_step_mb,
  })),
  parameters: ranks[0]?.parameters,
  load_average: ranks[0]?.load_average,
});
