import * as tf from '@tensorflow/tfjs';
import { copyIntoInPlace } from '../backend/fused/fused-ops.js';
import { kernelInfo, type KernelChoice } from '../backend/fused/kernel-choice.js';
import { SafetensorsReader } from '../model/safetensors.js';
import { sumOfSquares } from './gradients.js';
import type { ShardOptimizer } from './memory-plan.js';
import { AdamW, type AdamWConfig, type CheckpointableOptimizer, type NamedVariable, type UpdateSlot } from './optimizer.js';

/**
 * Optimizer-state and gradient sharding across data-parallel workers (train.shard_optimizer,
 * ZeRO stages 1 and 2), on TensorFlow's collectives.
 *
 * Partition: the trainable parameters are laid end to end in one flat space, in reverse parameter
 * order (the order a backward pass finishes them: head, top layer ... embedding), and cut into N
 * equal slices of ceil(P / N) values. Rank r owns slice r: for each parameter it overlaps, a
 * contiguous flat piece (a segment). Slices cross tensor boundaries, so the ranks hold the same
 * number of moments (to one value) even when one tensor (a 136M-parameter embedding) is a
 * quarter of the model.
 *
 * A step: the gradients go out in fixed buckets of that flat space, [k B, (k + 1) B) for the
 * collective bucket size B, which also cut through tensors: the 545 MB gradient of a 0.5B
 * model's embedding goes out as 9 buckets of 64 MB, so the reduction's own buffers stay at one
 * bucket. Each bucket is summed over the workers and a rank keeps only its part of the sum: a reduce-scatter made of TensorFlow 2.9's all-reduce
 * (CollectiveReduceV2) and a slice, because the library has no reduce-scatter op and its
 * all-to-all (CollectiveAllToAllV3) needs a communicator resource the binding cannot pass.
 * The global norm is exact: each rank's sum of squares of its reduced slice, summed over the
 * workers. AdamW then updates the owned segments only, with the owned moments, and the updated
 * slices are all-gathered (CollectiveGatherV2, in chunks of the bucket size) into every rank's
 * variables.
 *
 * `states` (stage 1) accumulates a step's micro-batch gradients locally as one process does and
 * reduce-scatters them at the end of the step. `states+gradients` (stage 2) reduce-scatters each
 * micro-batch's gradients as the backward pass finishes them (with train.recompute, layer by
 * layer), so a rank holds its slice of the summed gradient plus the buckets not yet complete,
 * never the whole gradient; each worker takes part in one reduction per global micro-batch
 * (with zeros for a micro-batch that has no rows of its own).
 */

/** The collectives the sharded optimizer needs (src/distributed/collective.ts CollectiveGroup has them). */
export interface ShardCollectives {
  readonly rank: number;
  readonly worldSize: number;
  readonly bucketBytes: number;
  allReduceSum(tensors: readonly tf.Tensor[], label?: string, opts?: { consume?: boolean }): Promise<tf.Tensor[]>;
  allGather(input: tf.Tensor, label?: string): Promise<tf.Tensor>;
}

/** A flat piece of parameter `param` (positions [start, start + length) of its flattened values) owned by a rank. */
export interface Segment {
  param: number;
  start: number;
  length: number;
}

export interface Bucket {
  /** Parameters that overlap the bucket, in flat order. */
  members: number[];
  /** [start, end) in the flat space. */
  start: number;
  end: number;
}

/** The flat partition of the parameters over the workers, and the gradient buckets. */
export class FlatPartition {
  /** Parameter indices in flat order (the reverse of the parameter list). */
  readonly order: number[];
  /** Flat offset of each parameter (indexed by parameter). */
  readonly offsets: number[];
  readonly total: number;
  /** Values in each rank's slice (the last rank's may be partly padding). */
  readonly shardLength: number;
  readonly buckets: Bucket[];

  constructor(
    readonly sizes: readonly number[],
    readonly worldSize: number,
    bucketElements: number,
  ) {
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new Error(`FlatPartition: worldSize ${worldSize} must be a positive integer`);
    this.order = sizes.map((_, i) => sizes.length - 1 - i);
    this.offsets = new Array(sizes.length);
    let at = 0;
    for (const i of this.order) {
      this.offsets[i] = at;
      at += sizes[i];
    }
    this.total = at;
    this.shardLength = Math.max(1, Math.ceil(at / worldSize));
    this.buckets = [];
    for (let start = 0; start < at; start += bucketElements) {
      const end = Math.min(start + bucketElements, at);
      this.buckets.push({ members: this.segmentsIn(start, end).map((s) => s.param), start, end });
    }
  }

  /** [start, end) of rank's slice in the flat space (clipped to the parameters). */
  rangeOf(rank: number): [number, number] {
    const start = Math.min(rank * this.shardLength, this.total);
    return [start, Math.min(start + this.shardLength, this.total)];
  }

  /** The pieces of parameters that lie in the flat range [start, end), in flat order. */
  segmentsIn(start: number, end: number): Segment[] {
    const out: Segment[] = [];
    for (const i of this.order) {
      const lo = Math.max(start, this.offsets[i]);
      const hi = Math.min(end, this.offsets[i] + this.sizes[i]);
      if (hi > lo) out.push({ param: i, start: lo - this.offsets[i], length: hi - lo });
    }
    return out;
  }
}

const flatten = (t: tf.Tensor) => tf.reshape(t, [-1]);

/**
 * AdamW over this rank's slice of the parameters, with the gradient reduce-scatter and the
 * weight all-gather around it. The variables stay whole on every rank (the model runs on them).
 */
export class ShardedAdamW implements CheckpointableOptimizer {
  readonly partition: FlatPartition;
  readonly segments: Segment[];
  readonly stage: 1 | 2;
  /** Seconds spent in collectives since the last takeCollectiveSeconds(). */
  private collectiveSeconds = 0;
  private readonly inner: AdamW;
  private readonly segmentOf: (number | undefined)[];
  /** This rank's part of the summed gradient: by segment, its pieces by bucket. */
  private grads: Map<number, tf.Tensor>[];
  /** AdamW's updated values of each segment, until the all-gather takes them. */
  private updated: (tf.Tensor | null)[];
  private reads: (tf.Tensor | null)[];
  /** Stage 2: gradients (by parameter) waiting for the rest of their bucket. */
  private readonly pending = new Map<number, tf.Tensor>();
  private nextBucket = 0;
  /** train.kernels: 'fused' assembles the gathered weights in place (native backend). */
  private readonly kernels: KernelChoice | undefined;

  constructor(
    readonly params: readonly NamedVariable[],
    config: Partial<AdamWConfig>,
    readonly group: ShardCollectives,
    mode: Exclude<ShardOptimizer, 'none'>,
  ) {
    this.stage = mode === 'states' ? 1 : 2;
    this.partition = new FlatPartition(
      params.map((p) => p.variable.size),
      group.worldSize,
      Math.max(1, Math.floor(group.bucketBytes / 4)),
    );
    this.segments = this.partition.segmentsIn(...this.partition.rangeOf(group.rank));
    this.segmentOf = new Array(params.length);
    this.segments.forEach((s, k) => (this.segmentOf[s.param] = k));
    this.grads = this.segments.map(() => new Map());
    this.updated = this.segments.map(() => null);
    this.reads = this.segments.map(() => null);
    const slots: UpdateSlot[] = this.segments.map((seg, k) => ({
      name: params[seg.param].name,
      shape: [seg.length],
      read: () => {
        this.reads[k] ??= tf.tidy(() => tf.slice(flatten(params[seg.param].variable), [seg.start], [seg.length]));
        return this.reads[k] as tf.Tensor;
      },
      write: (value) => {
        this.reads[k]?.dispose();
        this.reads[k] = null;
        this.updated[k]?.dispose();
        this.updated[k] = value;
      },
    }));
    this.inner = new AdamW(slots, config);
    this.kernels = config.kernels;
  }

  get step(): number {
    return this.inner.step;
  }

  /** Parameter values whose moments this rank holds. */
  get ownedValues(): number {
    return this.segments.reduce((a, s) => a + s.length, 0);
  }

  /** Gradient values this rank holds now: its slice of the sum so far, and gradients waiting for their bucket. */
  get heldGradientValues(): number {
    let n = 0;
    for (const pieces of this.grads) for (const t of pieces.values()) n += t.size;
    for (const t of this.pending.values()) n += t.size;
    return n;
  }

  takeCollectiveSeconds(): number {
    const s = this.collectiveSeconds;
    this.collectiveSeconds = 0;
    return s;
  }

  /**
   * Hands over final gradients of one micro-batch (indices into the parameter list; ownership
   * passes here). Each bucket is reduce-scattered as soon as all of its gradients are in, in
   * bucket order; after the last bucket the next micro-batch starts at the first again.
   */
  async putGradients(indices: readonly number[], grads: readonly tf.Tensor[]): Promise<void> {
    indices.forEach((i, k) => {
      if (this.pending.has(i)) {
        tf.dispose(grads.slice(k));
        throw new Error(`ShardedAdamW: a second gradient of ${this.params[i].name} in one micro-batch`);
      }
      this.pending.set(i, grads[k]);
    });
    const { buckets, offsets, sizes } = this.partition;
    while (this.nextBucket < buckets.length && buckets[this.nextBucket].members.every((i) => this.pending.has(i))) {
      const b = this.nextBucket;
      const bucket = buckets[b];
      const flat = tf.tidy(() => {
        const parts = bucket.members.map((i) => {
          const from = Math.max(bucket.start, offsets[i]);
          const to = Math.min(bucket.end, offsets[i] + sizes[i]);
          const g = flatten(this.pending.get(i) as tf.Tensor);
          return to - from === sizes[i] ? g : tf.slice(g, [from - offsets[i]], [to - from]);
        });
        return parts.length === 1 ? parts[0] : tf.concat(parts);
      });
      // A gradient that ends in this bucket is done with; one reaching into the next stays.
      for (const i of bucket.members) {
        if (offsets[i] + sizes[i] <= bucket.end) {
          (this.pending.get(i) as tf.Tensor).dispose();
          this.pending.delete(i);
        }
      }
      this.nextBucket = (b + 1) % buckets.length;
      await this.reduceScatter(b, flat);
    }
  }

  /** Every gradient of a micro-batch (aligned with the parameters), handed over at once. */
  putAllGradients(grads: readonly tf.Tensor[]): Promise<void> {
    return this.putGradients(grads.map((_, i) => i), grads);
  }

  /** This rank's part of a global micro-batch that has none of its rows: it adds zeros to the sums. */
  async putZeros(): Promise<void> {
    if (this.nextBucket !== 0 || this.pending.size > 0) throw new Error('ShardedAdamW: zeros in the middle of a micro-batch');
    for (const [b, bucket] of this.partition.buckets.entries()) await this.reduceScatter(b, tf.zeros([bucket.end - bucket.start]));
  }

  /**
   * The summed losses and the global norm of the summed gradient (exact: the ranks' sums of
   * squares of their slices, summed) in one collective. Call after every micro-batch is in.
   */
  async reduceNorm(losses: readonly number[]): Promise<{ losses: number[]; norm: number }> {
    if (this.nextBucket !== 0 || this.pending.size > 0) throw new Error(`ShardedAdamW: ${this.pending.size} gradient(s) never completed their bucket`);
    const mine = tf.tidy(() => {
      const sumSq = sumOfSquares(this.grads.flatMap((pieces) => [...pieces.values()]), this.kernels);
      return tf.concat([tf.tensor1d([...losses], 'float32'), tf.reshape(sumSq, [1])]);
    });
    const [summed] = await this.timed(() => this.group.allReduceSum([mine], 'loss and gradient norm', { consume: true }));
    const values = Array.from(await summed.data());
    summed.dispose();
    const sumSq = values.pop() as number;
    return { losses: values, norm: Math.sqrt(sumSq) };
  }

  /** One AdamW update of the owned slice (gradients scaled by gradScale), then the all-gather of the new weights. */
  async apply(lr: number, gradScale: number): Promise<void> {
    const grads = this.grads.map((pieces, k) => {
      const inOrder = [...pieces.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
      const size = inOrder.reduce((a, t) => a + t.size, 0);
      if (size !== this.segments[k].length) throw new Error(`ShardedAdamW: ${size} of ${this.segments[k].length} gradient values reached segment ${k} (${this.params[this.segments[k].param].name})`);
      const whole = inOrder.length === 1 ? inOrder[0] : tf.concat(inOrder);
      if (whole !== inOrder[0]) tf.dispose(inOrder);
      return whole;
    });
    this.grads = this.segments.map(() => new Map());
    try {
      this.inner.apply(grads, lr, { gradScale, consume: true });
    } finally {
      tf.dispose(grads.filter((g) => !g.isDisposed));
    }
    await this.gatherWeights();
  }

  /** Drops the step's gradients (a step that is not applied). */
  discardGradients(): void {
    tf.dispose([...this.grads.flatMap((pieces) => [...pieces.values()]), ...this.pending.values()]);
    this.grads = this.segments.map(() => new Map());
    this.pending.clear();
    this.nextBucket = 0;
  }

  stateSpecs(): { name: string; shape: number[] }[] {
    return this.params.flatMap((p) => [
      { name: `exp_avg.${p.name}`, shape: [...p.variable.shape] },
      { name: `exp_avg_sq.${p.name}`, shape: [...p.variable.shape] },
    ]);
  }

  /**
   * State entry i, assembled from every rank in flat chunks of the bucket size (each rank puts
   * its part of the chunk in zeros; the sum is exact) and handed out chunk by chunk: saving
   * holds one chunk beyond the moments, whatever the tensor's size.
   */
  async *stateChunks(i: number, _chunkBytes: number, write = true): AsyncGenerator<Float32Array> {
    const param = i >> 1;
    const size = this.params[param].variable.size;
    const k = this.segmentOf[param];
    const seg = k === undefined ? null : this.segments[k];
    const moment = k === undefined ? null : this.inner.stateTensors()[2 * k + (i & 1)].tensor;
    const chunk = Math.max(1, Math.floor(this.group.bucketBytes / 4));
    for (let from = 0; from < size; from += chunk) {
      const to = Math.min(size, from + chunk);
      const contribution = tf.tidy(() => {
        const lo = seg ? Math.max(from, seg.start) : 0;
        const hi = seg ? Math.min(to, seg.start + seg.length) : 0;
        if (!seg || !moment || hi <= lo) return tf.zeros([to - from]);
        const parts = [tf.zeros([lo - from]), tf.slice(moment, [lo - seg.start], [hi - lo]), tf.zeros([to - hi])].filter((t) => t.size > 0);
        return parts.length === 1 ? parts[0] : tf.concat(parts);
      });
      const [sum] = await this.timed(() => this.group.allReduceSum([contribution], `optimizer state ${i}`, { consume: true }));
      try {
        if (write) yield (await sum.data()) as Float32Array;
      } finally {
        sum.dispose();
      }
    }
  }

  /** A worker that does not write the checkpoint: takes its part in assembling every state entry. */
  async contributeState(): Promise<void> {
    const n = this.params.length * 2;
    for (let i = 0; i < n; i++) for await (const _ of this.stateChunks(i, 0, false));
  }

  /**
   * Loads this rank's segments of the moments from an optimizer.safetensors written by any
   * worker count (or one process): the file holds whole tensors, each rank reads its ranges only.
   */
  async loadState(file: string): Promise<void> {
    const reader = await SafetensorsReader.open(file);
    try {
      for (const spec of this.stateSpecs()) {
        const entry = reader.entry(spec.name);
        if (!entry) throw new Error(`${file}: optimizer state lacks ${spec.name}`);
        if (entry.shape.join('x') !== spec.shape.join('x')) throw new Error(`${file}: optimizer state ${spec.name} has shape [${entry.shape}], parameter has [${spec.shape}]`);
      }
      const moments = this.inner.stateTensors();
      for (let k = 0; k < this.segments.length; k++) {
        const seg = this.segments[k];
        for (const [j, prefix] of ['exp_avg', 'exp_avg_sq'].entries()) {
          const data = await reader.readRange(`${prefix}.${this.params[seg.param].name}`, seg.start, seg.length);
          tf.tidy(() => moments[2 * k + j].tensor.assign(tf.tensor1d(data, 'float32')));
        }
      }
      this.inner.setStep(optimizerStepOf(reader, file));
    } finally {
      await reader.close();
    }
  }

  dispose(): void {
    this.discardGradients();
    tf.dispose([...this.updated, ...this.reads].filter((t): t is tf.Tensor => t !== null));
    this.inner.dispose();
  }

  /** Sums bucket b (flat, consumed) over the workers and adds this rank's part of the sum to its gradients. */
  private async reduceScatter(b: number, flat: tf.Tensor): Promise<void> {
    const bucket = this.partition.buckets[b];
    const [reduced] = await this.timed(() => this.group.allReduceSum([flat], 'gradient reduce-scatter', { consume: true }));
    try {
      for (const i of bucket.members) {
        const k = this.segmentOf[i];
        if (k === undefined) continue;
        const segStart = this.partition.offsets[i] + this.segments[k].start;
        const lo = Math.max(bucket.start, segStart);
        const hi = Math.min(bucket.end, segStart + this.segments[k].length);
        if (hi <= lo) continue;
        const piece = tf.slice(reduced, [lo - bucket.start], [hi - lo]);
        const previous = this.grads[k].get(b);
        if (previous) {
          this.grads[k].set(b, tf.add(previous, piece));
          previous.dispose();
          piece.dispose();
        } else {
          this.grads[k].set(b, piece);
        }
      }
    } finally {
      reduced.dispose();
    }
  }

  /**
   * Every rank's updated slice into every rank's variables: rounds of CollectiveGatherV2 over
   * equal chunks of the slices; a parameter is assembled until it is complete, then assigned. At
   * most one chunk per rank and the incomplete parameters exist at once. On the native backend a
   * parameter is assembled in one buffer, each piece written into it in place as it arrives
   * (copyIntoInPlace); elsewhere its pieces are kept and concatenated at the end, which holds the
   * largest parameter (the embedding) twice.
   */
  private async gatherWeights(): Promise<void> {
    const { partition } = this;
    const n = partition.shardLength;
    const own = this.ownedValues;
    const shard = tf.tidy(() => {
      const parts = this.updated.map((t, k) => {
        if (t === null) throw new Error(`ShardedAdamW: segment ${k} was not updated`);
        return flatten(t);
      });
      if (own < n) parts.push(tf.zeros([n - own]));
      return parts.length === 1 ? parts[0].clone() : tf.concat(parts);
    });
    tf.dispose(this.updated.filter((t): t is tf.Tensor => t !== null));
    this.updated = this.segments.map(() => null);
    const pieces = new Map<number, { start: number; t: tf.Tensor }[]>();
    const buffers = new Map<number, tf.Tensor>();
    const inPlace = kernelInfo(this.kernels).used === 'fused';
    const received = new Map<number, number>();
    const chunk = Math.max(1, Math.floor(this.group.bucketBytes / 4 / this.group.worldSize));
    try {
      for (let at = 0; at < n; at += chunk) {
        const len = Math.min(chunk, n - at);
        const mine = tf.slice(shard, [at], [len]);
        let gathered: tf.Tensor;
        try {
          gathered = await this.timed(() => this.group.allGather(mine, 'weight all-gather'));
        } finally {
          mine.dispose();
        }
        try {
          for (let r = 0; r < this.group.worldSize; r++) {
            const from = r * n + at;
            for (const seg of partition.segmentsIn(from, Math.min(from + len, partition.total))) {
              const flatAt = partition.offsets[seg.param] + seg.start;
              const srcAt = r * len + flatAt - from;
              const complete = (received.get(seg.param) ?? 0) + seg.length === partition.sizes[seg.param];
              received.set(seg.param, (received.get(seg.param) ?? 0) + seg.length);
              if (inPlace) {
                let buffer = buffers.get(seg.param);
                if (!buffer) buffers.set(seg.param, (buffer = tf.zeros([partition.sizes[seg.param]])));
                copyIntoInPlace(buffer, gathered, seg.start, srcAt, seg.length);
                if (complete) {
                  buffers.delete(seg.param);
                  this.assignPieces(seg.param, [{ start: 0, t: buffer }]);
                }
                continue;
              }
              const list = pieces.get(seg.param) ?? [];
              list.push({ start: seg.start, t: tf.slice(gathered, [srcAt], [seg.length]) });
              pieces.set(seg.param, list);
              if (complete) {
                this.assignPieces(seg.param, list);
                pieces.delete(seg.param);
              }
            }
          }
        } finally {
          gathered.dispose();
        }
      }
      if (pieces.size + buffers.size > 0) throw new Error(`ShardedAdamW: the all-gather left ${pieces.size + buffers.size} parameter(s) incomplete`);
    } finally {
      for (const list of pieces.values()) tf.dispose(list.map((p) => p.t));
      tf.dispose([...buffers.values()]);
      shard.dispose();
    }
  }

  private assignPieces(param: number, list: { start: number; t: tf.Tensor }[]): void {
    const variable = this.params[param].variable;
    list.sort((a, b) => a.start - b.start);
    const value = tf.tidy(() => tf.reshape(list.length === 1 ? list[0].t : tf.concat(list.map((p) => p.t)), variable.shape));
    tf.dispose(list.map((p) => p.t));
    variable.assign(value);
    value.dispose();
  }

  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.collectiveSeconds += (performance.now() - t0) / 1000;
    }
  }
}

/** The optimizer step count an optimizer.safetensors records in its metadata. */
export function optimizerStepOf(reader: SafetensorsReader, file: string): number {
  const step = Number(reader.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${file}: metadata "step" is ${JSON.stringify(reader.metadata.step)}, expected the optimizer step count`);
  return step;
}
