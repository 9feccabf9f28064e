// Throughput of the data layer: N generated StepSamples streamed JSONL -> validate -> (a
// consensus-style filter) -> Arrow, timed with peak resident memory. The target is
// 1M samples in < 60 s and < 1.5 GB on a 2-core machine.
//
//   node --import tsx scripts/bench/bench-data.ts [--samples 1000000] [--dir /tmp/x] [--keep]
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JsonlWriter } from '../../src/data/jsonl.js';
import { openStepSamples } from '../../src/data/read.js';
import type { StepSample } from '../../src/data/types.js';
import { writeStepSamples } from '../../src/data/write.js';
import { Rng } from '../../src/util/rng.js';

export interface DataBenchResult {
  samples: number;
  kept: number;
  steps: number;
  jsonlBytes: number;
  arrowBytes: number;
  generateSeconds: number;
  pipelineSeconds: number;
  samplesPerSecond: number;
  peakRssMB: number;
}

/** A synthetic labelled solution: 2-12 arithmetic steps, MC and judge first errors that mostly agree. */
function makeSample(i: number, rng: Rng): StepSample {
  const n = 2 + Math.floor(rng.next() * 11);
  const steps: string[] = [];
  let total = Math.floor(rng.next() * 100);
  for (let k = 0; k < n; k++) {
    const add = 1 + Math.floor(rng.next() * 50);
    steps.push(`Step ${k + 1}: the running total ${total} plus ${add} gives ${total + add} items.`);
    total += add;
  }
  const firstError = rng.next() < 0.4 ? -1 : Math.floor(rng.next() * n);
  const labels = steps.map((_, k) => (firstError === -1 || k < firstError ? 1 : 0));
  const judgeFirstError = rng.next() < 0.8 ? firstError : Math.floor(rng.next() * n) - 1;
  return {
    id: `bench-${i}`,
    problem: `Problem ${i}: a shop starts with some items and receives ${n} deliveries. How many items does it have?`,
    steps,
    answer: String(total),
    labels,
    firstError,
    source: 'bench',
    meta: { judge_first_error: judgeFirstError, policy: 'sim' },
  };
}

async function* generate(count: number, seed: number): AsyncGenerator<StepSample> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) yield makeSample(i, rng);
}

/** Keeps samples whose MC first error agrees with the judge's (the consensus filter's rule). */
async function* consensus(samples: AsyncIterable<StepSample>): AsyncGenerator<StepSample> {
  for await (const s of samples) if (s.meta.judge_first_error === s.firstError) yield s;
}

export async function runDataBench(opts: { samples?: number; dir?: string; keep?: boolean; log?: (line: string) => void } = {}): Promise<DataBenchResult> {
  const count = opts.samples ?? 1_000_000;
  const log = opts.log ?? ((line: string) => console.error(line));
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'prmkit-bench-data-')));
  const jsonl = join(dir, 'samples.jsonl');
  const arrow = join(dir, 'samples.arrow');
  try {
    let t = performance.now();
    const out = await JsonlWriter.open(jsonl);
    for await (const s of generate(count, 1234)) await out.write(s);
    await out.close();
    const generateSeconds = (performance.now() - t) / 1000;
    const jsonlBytes = (await stat(jsonl)).size;
    log(`generated ${count} samples (${(jsonlBytes / 1e6).toFixed(0)} MB JSONL) in ${generateSeconds.toFixed(1)} s`);

    t = performance.now();
    const { samples, stats } = openStepSamples(jsonl, { format: 'prmkit' });
    let steps = 0;
    async function* countSteps(items: AsyncIterable<StepSample>) {
      for await (const s of items) {
        steps += s.steps.length;
        yield s;
      }
    }
    const kept = await writeStepSamples(arrow, consensus(countSteps(samples)), 'arrow');
    const pipelineSeconds = (performance.now() - t) / 1000;
    if (stats.samples !== count || stats.rejected !== 0) throw new Error(`read ${stats.samples} of ${count} samples (${stats.rejected} rejected)`);
    const result: DataBenchResult = {
      samples: count,
      kept,
      steps,
      jsonlBytes,
      arrowBytes: (await stat(arrow)).size,
      generateSeconds,
      pipelineSeconds,
      samplesPerSecond: count / pipelineSeconds,
      // maxRSS is in kilobytes.
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    };
    log(`JSONL -> validate -> consensus filter -> Arrow: ${count} samples (${steps} steps), kept ${kept}, in ${pipelineSeconds.toFixed(1)} s (${Math.round(result.samplesPerSecond)}/s); peak RSS ${result.peakRssMB.toFixed(0)} MB`);
    return result;
  } finally {
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const result = await runDataBench({ samples: arg('--samples') ? Number(arg('--samples')) : undefined, dir: arg('--dir'), keep: process.argv.includes('--keep') });
  console.log(JSON.stringify(result, null, 2));
}
