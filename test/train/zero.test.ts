import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { writeSafetensorsStreaming } from '../../src/model/safetensors.js';
import { AdamW, type NamedVariable } from '../../src/train/optimizer.js';
import { FlatPartition, ShardedAdamW, type ShardCollectives } from '../../src/train/zero.js';
import { testBackend } from '../support/backend.js';

/**
 * The sharded optimizer's arithmetic without processes (the cross-process runs are
 * test/distributed/shard-optimizer.test.ts): the flat partition, and N ShardedAdamW "ranks" in
 * one process joined by an in-memory stand-in for TensorFlow's collectives, against one AdamW.
 */

/** N in-memory ranks: each collective waits for all N calls of the same sequence number. */
function memoryGroup(worldSize: number, bucketBytes: number): ShardCollectives[] {
  const rounds = new Map<number, { inputs: Float32Array[]; waiters: ((out: Float32Array) => void)[] }>();
  const counters = new Array(worldSize).fill(0);
  const meet = (rank: number, data: Float32Array, combine: (all: Float32Array[]) => Float32Array): Promise<Float32Array> => {
    const seq = counters[rank]++;
    const round = rounds.get(seq) ?? { inputs: new Array<Float32Array>(worldSize), waiters: [] as ((out: Float32Array) => void)[] };
    rounds.set(seq, round);
    round.inputs[rank] = data;
    return new Promise((resolve) => {
      round.waiters.push(resolve);
      if (round.waiters.length === worldSize) {
        const out = combine(round.inputs);
        rounds.delete(seq);
        round.waiters.forEach((w) => w(out));
      }
    });
  };
  return Array.from({ length: worldSize }, (_, rank) => ({
    rank,
    worldSize,
    bucketBytes,
    async allReduceSum(tensors, _label, opts) {
      const out: tf.Tensor[] = [];
      for (const t of tensors) {
        const data = (await t.data()) as Float32Array;
        if (opts?.consume) t.dispose();
        const sum = await meet(rank, data, (all) => all[0].map((_, i) => all.reduce((a, x) => a + x[i], 0)));
        out.push(tf.tensor(sum, t.shape));
      }
      return out;
    },
    async allGather(input) {
      const data = (await input.data()) as Float32Array;
      const all = await meet(rank, data, (parts) => {
        const joined = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
        parts.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
        return joined;
      });
      return tf.tensor1d(all);
    },
  }));
}

const SHAPES: [string, number[]][] = [
  ['embed.weight', [13, 4]],
  ['layer.0.proj.weight', [4, 5]],
  ['layer.0.proj.bias', [5]],
  ['norm.weight', [4]],
  ['head.weight', [4, 2]],
];

function makeParams(seed: number): NamedVariable[] {
  return SHAPES.map(([name, shape], k) => {
    const t = tf.randomNormal(shape, 0, 1, 'float32', seed + k);
    const variable = tf.variable(t, true, `${name}-${seed}-${Math.random()}`);
    t.dispose();
    return { name, variable };
  });
}

function gradsAt(step: number, rank: number): tf.Tensor[] {
  return SHAPES.map(([, shape], k) => tf.randomNormal(shape, 0, 1, 'float32', 1000 * step + 10 * k + rank));
}

async function maxDiff(a: readonly tf.Tensor[], b: readonly tf.Tensor[]): Promise<number> {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [await a[i].data(), await b[i].data()];
    for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - y[j]));
  }
  return worst;
}

describe('train/zero (optimizer sharding, in one process)', function () {
  this.timeout(60_000);
  before(async () => {
    await selectBackend(testBackend(), { log: () => {} });
  });

  it('partitions the flat parameter space into equal slices that cover every value once, buckets cutting through tensors', () => {
    const sizes = [52, 20, 5, 4, 8];
    for (const n of [1, 2, 3, 4, 7]) {
      const p = new FlatPartition(sizes, n, 6);
      const seen = sizes.map((s) => new Array(s).fill(0));
      const owned: number[] = [];
      for (let r = 0; r < n; r++) {
        const segs = p.segmentsIn(...p.rangeOf(r));
        owned.push(segs.reduce((a, s) => a + s.length, 0));
        for (const s of segs) for (let j = s.start; j < s.start + s.length; j++) seen[s.param][j]++;
      }
      expect(seen.flat().every((c) => c === 1), `N=${n}`).to.equal(true);
      expect(Math.max(...owned) - Math.min(...owned.slice(0, -1), Math.max(...owned)), `N=${n}: ${owned}`).to.be.at.most(1);
      // The flat order is the reverse of the parameter list (a backward pass's order).
      expect(p.order).to.deep.equal([4, 3, 2, 1, 0]);
      expect(p.buckets.map((b) => b.end - b.start).every((len, i, all) => len === 6 || i === all.length - 1)).to.equal(true);
      expect(p.buckets[p.buckets.length - 1].end).to.equal(89);
    }
  });

  it('stage 2 fed layer by layer holds, between handovers, its slice of the sum and what waits for a bucket, never the whole gradient', async () => {
    const before = tf.memory().numTensors;
    const groups = memoryGroup(2, 24);
    const ranks = groups.map((g) => {
      const params = makeParams(3);
      return { params, opt: new ShardedAdamW(params, {}, g, 'states+gradients') };
    });
    const total = SHAPES.reduce((a, [, shape]) => a + shape.reduce((x, y) => x * y, 1), 0);
    const held = await Promise.all(
      ranks.map(async ({ opt }, r) => {
        const grads = gradsAt(0, r);
        let most = 0;
        // As a backward pass finishes them: head first, embedding last.
        for (let i = SHAPES.length - 1; i >= 0; i--) {
          await opt.putGradients([i], [grads[i]]);
          most = Math.max(most, opt.heldGradientValues);
        }
        const after = opt.heldGradientValues;
        opt.discardGradients();
        return { most, after, owned: opt.ownedValues };
      }),
    );
    for (const h of held) {
      expect(h.after).to.equal(h.owned);
      // After each handover: its slice so far plus the tensor a bucket boundary holds back; never all 89.
      // (The part being handed over arrives whole: a backward pass makes each tensor's gradient whole.)
      expect(h.most).to.be.at.most(h.owned + 52);
      expect(h.most).to.be.below(total);
    }
    for (const { params, opt } of ranks) {
      opt.dispose();
      params.forEach((p) => p.variable.dispose());
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  for (const n of [2, 3]) {
    it(`${n} ranks with sharded moments and gradients take the steps of one AdamW (clipping exact), checkpoint the same state, and load it back`, async () => {
      const before = tf.memory().numTensors;
      const config = { weightDecay: 0.1, noDecayPatterns: ['\\.bias$', 'norm\\.weight$'] };
      const reference = makeParams(7);
      const whole = new AdamW(reference, config);
      const groups = memoryGroup(n, 24); // 6-value buckets
      const ranks = groups.map((g) => {
        const params = makeParams(7);
        return { params, opt: new ShardedAdamW(params, config, g, 'states+gradients') };
      });
      const maxNorm = 3;
      for (let step = 0; step < 3; step++) {
        // Rank r's micro-batch gradient; one process sees their sum.
        const perRank = ranks.map((_, r) => gradsAt(step, r));
        const summed = SHAPES.map((_, k) => tf.addN(perRank.map((g) => g[k])));
        const norm = Math.sqrt(summed.reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
        const scale = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
        whole.apply(summed, 1e-2, { gradScale: scale, consume: true });
        const norms = await Promise.all(
          ranks.map(async ({ opt }, r) => {
            await opt.putAllGradients(perRank[r]);
            const reduced = await opt.reduceNorm([r + 1]);
            expect(reduced.losses[0]).to.equal((n * (n + 1)) / 2);
            await opt.apply(1e-2, reduced.norm > maxNorm ? maxNorm / (reduced.norm + 1e-6) : 1);
            return reduced.norm;
          }),
        );
        norms.forEach((x) => expect(x).to.be.closeTo(norm, 1e-4));
      }
      const vars = (ps: NamedVariable[]) => ps.map((p) => p.variable);
      for (const { params } of ranks) expect(await maxDiff(vars(reference), vars(params))).to.be.below(1e-6);

      // The assembled state is the one process's, entry for entry; every rank takes part.
      const specs = ranks[0].opt.stateSpecs();
      expect(specs).to.deep.equal(whole.stateSpecs());
      const assembled = await Promise.all(
        ranks.map(async ({ opt }, r) => {
          const out: Float32Array[] = [];
          for (let i = 0; i < specs.length; i++) {
            const parts: Float32Array[] = [];
            for await (const c of opt.stateChunks(i, 0, r === 0)) parts.push(c);
            out.push(Float32Array.from(parts.flatMap((p) => Array.from(p))));
          }
          return out;
        }),
      );
      const expected = whole.stateTensors().map((s) => s.tensor.dataSync());
      assembled[0].forEach((data, i) => data.forEach((x, j) => expect(x, specs[i].name).to.be.closeTo(expected[i][j], 1e-7)));
      expect(assembled[1].every((d) => d.length === 0)).to.equal(true);

      // One process's optimizer.safetensors loads into sharded ranks (each reads its slices).
      const dir = mkdtempSync(join(tmpdir(), 'prmkit-zero-'));
      try {
        const file = join(dir, 'optimizer.safetensors');
        await writeSafetensorsStreaming(file, specs, (_s, i) => whole.stateChunks(i, 1 << 20), { metadata: { step: String(whole.step) } });
        const fresh = groups.map((g) => new ShardedAdamW(makeParams(7), config, g, 'states'));
        for (const opt of fresh) await opt.loadState(file);
        const reloaded = await Promise.all(fresh.map(async (opt, r) => {
          const parts: Float32Array[] = [];
          for await (const c of opt.stateChunks(1, 0, r === 0)) parts.push(c);
          return parts;
        }));
        expect(fresh[0].step).to.equal(3);
        expect(Array.from(reloaded[0].flatMap((p) => Array.from(p)))).to.deep.equal(Array.from(expected[1]));
        for (const opt of fresh) {
          opt.params.forEach((p) => p.variable.dispose());
          opt.dispose();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      for (const { params, opt } of ranks) {
        opt.dispose();
        params.forEach((p) => p.variable.dispose());
      }
      whole.dispose();
      reference.forEach((p) => p.variable.dispose());
      expect(tf.memory().numTensors).to.equal(before);
    });
  }
});
