/**
 * A training process for test/distributed/shard-optimizer.test.ts (not a test file itself): the
 * toy PRM of test/train/toy.ts trained by trainModel, alone or as one worker of a cluster when
 * TF_CONFIG is set (spawned by the --workers launcher). Environment:
 *   OUT          run directory (shared by the workers)
 *   SHARD        train.shard_optimizer (none, states, states+gradients)
 *   RESUME=1     continue from the newest checkpoint in OUT
 *   BUCKET_BYTES the collectives' bucket size (small: many buckets, slices across tensors)
 * Prints one JSON line: rank, steps, tensors left over by training, the sharding log line.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { joinCluster, trainingCluster } from '../../src/distributed/join.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel } from '../../src/train/trainer.js';
import { toySetup, toyTrainConfig } from '../train/toy.js';

const env = process.env;

async function main(): Promise<void> {
  await selectBackend('tensorflow', { log: () => {} });
  const cluster = trainingCluster();
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    process.stderr.write(`${line}\n`);
  };
  const dp = cluster ? await joinCluster(cluster, { log, bucketBytes: Number(env.BUCKET_BYTES ?? 4096), timeoutSeconds: 60 }) : undefined;
  // 45 items: the last step of an epoch has 5 rows, micro-batches of 4 and 1 (a worker with no rows in one).
  const setup = await toySetup({ nTrain: 45, nDev: 8, layers: 2, hidden: 16 });
  if (dp) await dp.syncWeights(setup.model.variables.values());
  const config = toyTrainConfig({
    epochs: 4,
    max_steps: 20,
    batch_size: 4,
    grad_accumulation: 2,
    lm_loss_weight: 0.5,
    recompute: true,
    eval_every: 0,
    save_every: 5,
    keep_last: 4,
    final: 'last',
    max_grad_norm: 0.5,
    shard_optimizer: env.SHARD ?? 'none',
  });
  const before = tf.memory().numTensors;
  const result = await trainModel({
    model: setup.model,
    io: prmModelIo(setup.model, setup.files),
    train: setup.train,
    config,
    outDir: env.OUT as string,
    padTokenId: setup.tokenizer.padTokenId,
    log,
    progress: false,
    resume: env.RESUME === '1',
    parallel: dp?.role,
  });
  const steps = result.steps;
  dp?.close();
  const leaked = tf.memory().numTensors - before;
  process.stdout.write(`${JSON.stringify({ rank: dp?.rank ?? 0, steps, leaked, sharding: lines.find((l) => /shard_optimizer/.test(l)) ?? null })}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`worker failed: ${err.name}: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
