/**
 * Forward-pass throughput of the PRM on each backend, plus the golden parity error there.
 *
 *   node --import tsx scripts/bench/bench-forward.ts [--model DIR] [--backends cpu,wasm]
 *        [--batch 4] [--seq 128] [--seconds 5]
 *
 * Defaults to the golden GQA fixture (test/fixtures/model/qwen2-gqa). Prints one JSON line per
 * backend on stdout: tokens/s of logits() over a full [batch, seq] batch of random ids (no
 * padding), and the max |logit - reference| over the fixture's samples when the model
 * directory has a reference.json. The machine is shared: compare runs made close together.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import type { PrmModel } from '../../src/model/prm.js';
import { Rng } from '../../src/util/rng.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const modelDir = arg('model', fileURLToPath(new URL('../../test/fixtures/model/qwen2-gqa', import.meta.url)));
const backends = arg('backends', 'cpu,wasm').split(',') as ConcreteBackend[];
const batch = Number(arg('batch', '4'));
const seqLen = Number(arg('seq', '128'));
const seconds = Number(arg('seconds', '5'));

function parityError(model: PrmModel): number | null {
  const refPath = join(modelDir, 'reference.json');
  if (!existsSync(refPath)) return null;
  const ref = JSON.parse(readFileSync(refPath, 'utf8')) as { samples: { input_ids: number[]; logits: number[][] }[] };
  let worst = 0;
  for (const s of ref.samples) {
    const got = tf.tidy(() => {
      const ids = tf.tensor2d([s.input_ids], undefined, 'int32');
      return model.logits(ids, tf.onesLike(ids)).dataSync();
    });
    s.logits.flat().forEach((v, i) => (worst = Math.max(worst, Math.abs(v - got[i]))));
  }
  return worst;
}

for (const backend of backends) {
  await selectBackend(backend, { log: (line) => process.stderr.write(`${line}\n`) });
  const { model } = await loadPrm(modelDir);
  const rng = new Rng(1);
  const idsData = Int32Array.from({ length: batch * seqLen }, () => rng.int(0, model.config.vocabSize - 1));
  const ids = tf.tensor2d(idsData, [batch, seqLen], 'int32');
  const mask = tf.ones([batch, seqLen], 'int32') as tf.Tensor2D;
  const run = () => {
    const logits = model.logits(ids, mask);
    logits.dataSync();
    logits.dispose();
  };
  run(); // warm-up: kernel setup, XNNPACK weight packing
  let iterations = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000 || iterations < 2) {
    run();
    iterations++;
  }
  const elapsed = (performance.now() - start) / 1000;
  const info = backendInfo();
  console.log(
    JSON.stringify({
      backend,
      threads: info.threads,
      simd: info.simd,
      model: modelDir,
      params: model.numParameters(),
      batch,
      seqLen,
      iterations,
      msPerForward: +((elapsed * 1000) / iterations).toFixed(2),
      tokensPerSecond: Math.round((batch * seqLen * iterations) / elapsed),
      maxParityError: parityError(model),
    }),
  );
  tf.dispose([ids, mask]);
  model.dispose();
}
