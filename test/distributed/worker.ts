/**
 * A worker process for the collective tests (spawned by them with TF_CONFIG set; not a test
 * file itself). Joins the group on the native backend, then runs SCENARIO:
 *   allreduce  sums rank-dependent tensors of known shapes (several buckets) and prints them
 *   steps      STEPS all-reduces of a small gradient-sized buffer, one per `interval` ms;
 *              rank DIE_RANK SIGKILLs itself (or spins forever with HANG=1) before step DIE_AT
 * LATE_RANK starts LATE_MS later than the others. Prints one JSON line per result on stdout;
 * exits 1 with the error on stderr.
 */
import * as tf from '@tensorflow/tfjs';
import { CollectiveGroup } from '../../src/distributed/collective.js';
import { clusterFromEnv } from '../../src/distributed/tf-config.js';
import { selectBackend } from '../../src/backend/backend.js';

const env = process.env;
const print = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

async function main(): Promise<void> {
  const cluster = clusterFromEnv();
  if (!cluster) throw new Error('worker: TF_CONFIG is not set');
  await selectBackend('tensorflow', { log: () => {} });
  // A worker that starts late (LATE_RANK, LATE_MS), as on another machine.
  if (Number(env.LATE_RANK ?? -1) === cluster.rank) await new Promise((resolve) => setTimeout(resolve, Number(env.LATE_MS ?? 0)));
  const tensorsBefore = tf.memory().numTensors;
  const group = await CollectiveGroup.start(cluster, {
    timeoutSeconds: Number(env.TIMEOUT ?? 30),
    startupTimeoutSeconds: Number(env.STARTUP_TIMEOUT ?? 60),
    healthIntervalMs: Number(env.HEALTH_INTERVAL_MS ?? 500),
    healthTimeoutMs: 2000,
    bucketBytes: Number(env.BUCKET_BYTES ?? 64 * 1024 * 1024),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const rank = group.rank;
  if (env.SCENARIO === 'allreduce') {
    // Values depend on rank and position, so a missing, doubled or misplaced piece shows.
    const shapes = [[3, 4], [5], [2, 3, 2], [1], [40]];
    const inputs = shapes.map((shape, k) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return tf.tensor(Float32Array.from({ length: size }, (_, i) => (rank + 1) * (k + 1) + i / 8), shape);
    });
    const reduced = await group.allReduceSum(inputs);
    print({ rank, shapes: reduced.map((t) => t.shape), values: reduced.map((t) => Array.from(t.dataSync())) });
    // Handing the inputs over (as the gradient reducer does) frees them and gives the same sums.
    const copies = inputs.map((t) => t.clone());
    const consumed = await group.allReduceSum(copies, 'consume', { consume: true });
    const same = consumed.every((t, k) => tf.tidy(() => tf.all(tf.equal(t, reduced[k])).dataSync()[0] === 1));
    print({ rank, consumedSame: same, inputsFreed: copies.every((t) => t.isDisposed) });
    tf.dispose([...inputs, ...reduced, ...consumed]);
    await group.agree('same-value', [42, -7]);
    let disagreement = '';
    try {
      await group.agree('rank-value', [rank]);
    } catch (err) {
      disagreement = (err as Error).message;
    }
    print({ rank, disagreement });
  } else if (env.SCENARIO === 'steps') {
    const steps = Number(env.STEPS ?? 10);
    const dieAt = Number(env.DIE_AT ?? -1);
    const dieRank = Number(env.DIE_RANK ?? -1);
    const grad = tf.fill([Number(env.SIZE ?? 1000)], rank + 1);
    for (let s = 0; s < steps; s++) {
      if (rank === dieRank && s === dieAt) {
        print({ rank, dying: s, hang: env.HANG === '1' });
        if (env.HANG === '1') for (;;);
        process.kill(process.pid, 'SIGKILL');
      }
      const [sum] = await group.allReduceSum([grad], `step ${s}`);
      print({ rank, step: s, first: sum.dataSync()[0] });
      sum.dispose();
      await new Promise((r) => setTimeout(r, Number(env.INTERVAL_MS ?? 200)));
    }
    grad.dispose();
  } else {
    throw new Error(`worker: unknown SCENARIO ${env.SCENARIO}`);
  }
  await group.barrier('end');
  group.close();
  print({ rank, leakedTensors: tf.memory().numTensors - tensorsBefore });
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`worker failed: ${err.name}: ${err.message}\n`);
    process.exit(1);
  },
);
