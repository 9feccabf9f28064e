/**
 * Child process of memory.test.ts: 1,000 trainer steps of a tiny PRM, sampling every 50 steps
 * (after a full garbage collection, so V8's lazy collection is not mistaken for growth)
 * tf.memory().numTensors, resident memory and the V8 heap. Needs node --expose-gc.
 * Prints one JSON object: { backend, samples: [{ step, numTensors, rssMb, heapMb }] }.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, selectBackend, type BackendName } from '../../src/backend/backend.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel } from '../../src/train/trainer.js';
import { toySetup, toyTrainConfig } from '../train/toy.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const steps = Number(process.argv[3] ?? 1000);
await selectBackend((process.argv[2] ?? 'wasm') as BackendName, { log: () => {} });
const setup = await toySetup({ nTrain: 16, nDev: 0 });
const out = mkdtempSync(join(tmpdir(), 'prmkit-memory-'));
const samples: { step: number; numTensors: number; rssMb: number; heapMb: number }[] = [];
try {
  await trainModel({
    model: setup.model,
    io: prmModelIo(setup.model, setup.files),
    train: setup.train,
    config: toyTrainConfig({ epochs: steps, max_steps: steps, eval_every: 0, save_every: 0, log_every: 100, batch_size: 4 }),
    outDir: out,
    padTokenId: setup.tokenizer.padTokenId,
    log: () => {},
    progress: false,
    afterStep: (step) => {
      if (step % 50 !== 0) return;
      gc();
      const mem = process.memoryUsage();
      samples.push({ step, numTensors: tf.memory().numTensors, rssMb: mem.rss / 2 ** 20, heapMb: mem.heapUsed / 2 ** 20 });
    },
  });
} finally {
  setup.model.dispose();
  rmSync(out, { recursive: true, force: true });
}
console.log(JSON.stringify({ backend: backendInfo().name, samples }));
