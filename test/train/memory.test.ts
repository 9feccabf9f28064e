import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BACKEND_ENV, type BackendName } from '../../src/backend/backend.js';

/**
 * A long run must not leak: 1,000 optimizer steps of the trainer on a tiny PRM keep
 * tf.memory().numTensors constant and resident memory and the V8 heap flat (a leak of one
 * activation-sized tensor per step, ~100 KB here, would add ~90 MB). The run happens in a
 * child process (memory-run.ts) so that other tests' garbage is not counted and it can force
 * garbage collections before each sample.
 */

const STEPS = 1000;
const RSS_GROWTH_LIMIT_MB = 32;
const HEAP_GROWTH_LIMIT_MB = 8;
// wasm unless PRMKIT_BACKEND names one: a toy step costs ~10 ms there, ~60 ms on cpu.
const BACKEND: BackendName = process.env[BACKEND_ENV]?.trim() ? 'auto' : 'wasm';

interface Sample {
  step: number;
  numTensors: number;
  rssMb: number;
  heapMb: number;
}

describe('perf: memory over a 1,000-step training run', function () {
  this.timeout(120_000);

  it(`keeps numTensors constant and RSS flat (${BACKEND} backend)`, () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/train/memory-run.ts', BACKEND, String(STEPS)], {
      cwd: root,
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(run.status, run.stderr || String(run.error)).to.equal(0);
    const { samples } = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as { samples: Sample[] };
    expect(samples.map((s) => s.step)).to.deep.equal(Array.from({ length: STEPS / 50 }, (_, i) => 50 * (i + 1)));
    const counts = new Set(samples.map((s) => s.numTensors));
    expect(counts.size, `numTensors per sample: ${samples.map((s) => s.numTensors).join(', ')}`).to.equal(1);
    // Against step 100: the first steps warm up caches and JIT code.
    const base = samples[1];
    const last = samples[samples.length - 1];
    expect(last.rssMb - base.rssMb, `RSS ${base.rssMb.toFixed(1)} MB -> ${last.rssMb.toFixed(1)} MB`).to.be.below(RSS_GROWTH_LIMIT_MB);
    expect(last.heapMb - base.heapMb, `heap ${base.heapMb.toFixed(1)} MB -> ${last.heapMb.toFixed(1)} MB`).to.be.below(HEAP_GROWTH_LIMIT_MB);
  });
});
