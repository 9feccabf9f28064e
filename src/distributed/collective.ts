/**
 * A group of data-parallel workers joined by TensorFlow's multi-client collective ops (the
 * runtime under tf.distribute.MultiWorkerMirroredStrategy): CollectiveReduceV2 executed eagerly
 * on the native backend's tensors; gRPC ring all-reduce between CPU workers (NCCL between GPUs
 * when asked for, untested here). No transport of ours carries a tensor.
 *
 * Faults. A collective waits at most `timeoutSeconds` for the others (the op's timeout_seconds
 * attribute). Meanwhile every `healthIntervalMs` the group asks each peer's TensorFlow server for
 * its health (TFE_CollectiveOpsCheckPeerHealth); a peer that does not answer (a killed or frozen
 * process) aborts the collectives (TFE_AbortCollectiveOps) with an error naming its rank, so the
 * waiting op fails at once instead of at the timeout. A peer whose server answers but never joins
 * (hung in its own code) is caught by the timeout. Either way the error names the rank(s), and
 * the group stays failed: TensorFlow cannot reset aborted collectives without a new context.
 */
import * as tf from '@tensorflow/tfjs';
import { bucketBytesFromEnv } from './bucket.js';
import { nativeBackend, TF_CODE, type NativeBackend, type OpAttr, type TfError } from './native.js';
import { openInterfacesNote } from './exposure.js';
import { checkPortBindable } from './port-check.js';
import { encodeServerDef } from './server-def.js';
import type { ClusterConfig } from './tf-config.js';

/** Environment variable: seconds a collective may wait for the other workers. */
export const COLLECTIVE_TIMEOUT_ENV = 'PRMKIT_COLLECTIVE_TIMEOUT';
export const DEFAULT_TIMEOUT_SECONDS = 300;

export type Communication = 'auto' | 'ring' | 'nccl';

export interface CollectiveOptions {
  /** Seconds one collective may wait for the other workers (default PRMKIT_COLLECTIVE_TIMEOUT or 300). */
  timeoutSeconds?: number;
  /** Seconds the first collective may wait for every worker to start (default 600). */
  startupTimeoutSeconds?: number;
  /** Interval of the peer health checks (default 2000 ms). */
  healthIntervalMs?: number;
  /** How long one health check waits for an answer (default 5000 ms). */
  healthTimeoutMs?: number;
  /** The collective's communication_hint: auto, ring (gRPC) or nccl (GPUs; untested here). */
  communication?: Communication;
  /** Largest all-reduce buffer in bytes: gradients are packed into buckets of at most this size (default PRMKIT_COLLECTIVE_BUCKET_MB or 64 MiB). */
  bucketBytes?: number;
  log?: (line: string) => void;
}

/** One or more workers failed (died, froze, or never joined): the message names their ranks. */
export class WorkerFailedError extends Error {
  override name = 'WorkerFailedError';
  constructor(
    message: string,
    readonly ranks: number[],
  ) {
    super(message);
  }
}

export class CollectiveError extends Error {
  override name = 'CollectiveError';
}

const GROUP_KEY = 1;
type MergeOp = 'Add' | 'Max' | 'Min';

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? text;
}

export function timeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[COLLECTIVE_TIMEOUT_ENV]?.trim();
  if (!raw) return DEFAULT_TIMEOUT_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${COLLECTIVE_TIMEOUT_ENV}=${raw}: expected a positive number of seconds`);
  return n;
}

function rankList(ranks: readonly number[]): string {
  return ranks.length === 1 ? `rank ${ranks[0]}` : `ranks ${ranks.join(', ')}`;
}

export class CollectiveGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutSeconds: number;
  readonly bucketBytes: number;
  private readonly backend: NativeBackend;
  private readonly peers: { rank: number; task: string }[];
  private readonly healthIntervalMs: number;
  private readonly healthTimeoutMs: number;
  private readonly communication: Communication;
  private readonly log: (line: string) => void;
  private instanceKey = 0;
  private failure: WorkerFailedError | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;
  private closed = false;

  private constructor(
    readonly cluster: ClusterConfig,
    opts: CollectiveOptions,
  ) {
    this.backend = nativeBackend();
    this.rank = cluster.rank;
    this.worldSize = cluster.worldSize;
    this.timeoutSeconds = opts.timeoutSeconds ?? timeoutFromEnv();
    this.healthIntervalMs = opts.healthIntervalMs ?? 2000;
    this.healthTimeoutMs = opts.healthTimeoutMs ?? 5000;
    this.communication = opts.communication ?? 'auto';
    this.bucketBytes = opts.bucketBytes ?? bucketBytesFromEnv();
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.peers = cluster.tasks.map((task, rank) => ({ rank, task })).filter((p) => p.rank !== cluster.rank);
  }

  /**
   * Enables collective ops on the native backend's context for this task of the cluster, waits
   * until every worker has joined (one barrier), then starts the peer health checks. Must run
   * before the process creates its first tensor: enabling renames the context's devices.
   */
  static async start(cluster: ClusterConfig, opts: CollectiveOptions = {}): Promise<CollectiveGroup> {
    const group = new CollectiveGroup(cluster, opts);
    // TensorFlow says only "Could not start gRPC server" when its port is taken, and the other
    // workers would wait for this one until the startup timeout: try the port first.
    await checkPortBindable(cluster.address, cluster.port);
    group.log(`collective: ${openInterfacesNote([cluster.port])}`);
    let device: string;
    try {
      device = group.backend.binding.enableCollectiveOps(encodeServerDef(cluster));
    } catch (err) {
      throw new CollectiveError(`could not start TensorFlow's server for ${cluster.tasks[group.rank]} at ${cluster.address}: ${firstLine((err as Error).message)}`);
    }
    group.log(
      `collective: rank ${group.rank} of ${group.worldSize} (${cluster.tasks[group.rank]}, device ${device}), ` +
        `leader ${cluster.leader}, timeout ${group.timeoutSeconds} s; waiting for the other workers`,
    );
    const t0 = Date.now();
    const startupTimeout = opts.startupTimeoutSeconds ?? 600;
    await group.waitForPeers(startupTimeout);
    await group.barrier('startup', Math.max(1, startupTimeout - Math.floor((Date.now() - t0) / 1000)));
    group.log(`collective: all ${group.worldSize} workers joined in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    group.timer = setInterval(() => void group.checkPeers(), group.healthIntervalMs);
    group.timer.unref();
    return group;
  }

  /**
   * Sums float32 tensors element-wise over all workers; every worker passes tensors of the same
   * shapes in the same order. The tensors are laid end to end and cut into flat buckets of at
   * most bucketBytes, which cut through tensors: one collective per bucket. A 545 MB embedding
   * gradient goes out as 9 buckets of 64 MB, so TensorFlow's ring and gRPC buffers stay at one
   * bucket's size instead of that of the largest tensor. The inputs stay the caller's, unless
   * `consume`: then each is freed as soon as its last piece is packed, so sums and inputs together
   * never take much more than one copy of the gradients (2 GB for a 0.5B model).
   */
  async allReduceSum(tensors: readonly tf.Tensor[], label = 'all-reduce', opts: { consume?: boolean } = {}): Promise<tf.Tensor[]> {
    const out: tf.Tensor[] = new Array(tensors.length);
    // Reduced pieces of a tensor cut by bucket edges, until its last piece arrives.
    const pieces = new Map<number, tf.Tensor[]>();
    try {
      for (const bucket of this.buckets(tensors)) {
        const flat = tf.tidy(() => {
          const parts = bucket.map(({ index, start, length }) => {
            const whole = tf.reshape(tensors[index], [-1]);
            return length === whole.size ? whole : tf.slice(whole, start, length);
          });
          return parts.length === 1 ? parts[0] : tf.concat(parts);
        });
        if (opts.consume) for (const { index, start, length } of bucket) if (start + length === tensors[index].size) tensors[index].dispose();
        let reduced: tf.Tensor;
        try {
          reduced = await this.reduce(flat, 'Add', label);
        } finally {
          flat.dispose();
        }
        const split = bucket.length === 1 ? [reduced] : tf.split(reduced, bucket.map((s) => s.length));
        if (bucket.length > 1) reduced.dispose();
        bucket.forEach(({ index, start, length }, j) => {
          const have = [...(pieces.get(index) ?? []), split[j]];
          if (start + length < tensors[index].size) {
            pieces.set(index, have);
            return;
          }
          pieces.delete(index);
          const shape = tensors[index].shape;
          out[index] = tf.tidy(() => tf.reshape(have.length === 1 ? have[0] : tf.concat(have), shape));
          tf.dispose(have);
        });
      }
      return out;
    } catch (err) {
      tf.dispose(out.filter((t) => t !== undefined));
      for (const held of pieces.values()) tf.dispose(held);
      if (opts.consume) tf.dispose(tensors.filter((t) => !t.isDisposed));
      throw err;
    }
  }

  /** Returns once every worker has called barrier with the same label sequence. */
  async barrier(label: string, timeoutSeconds = this.timeoutSeconds): Promise<void> {
    const one = tf.ones([1]);
    try {
      const count = await this.reduce(one, 'Add', `barrier ${label}`, timeoutSeconds);
      const n = (await count.data())[0];
      count.dispose();
      if (n !== this.worldSize) throw new CollectiveError(`barrier ${label}: ${n} of ${this.worldSize} workers counted`);
    } finally {
      one.dispose();
    }
  }

  /**
   * Checks that every worker holds the same integers (a resume step, a data fingerprint): they
   * are reduced with Max over [v, -v], so max and -min come back in one collective.
   */
  async agree(label: string, values: readonly number[]): Promise<void> {
    for (const v of values) if (!Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) throw new Error(`agree ${label}: ${v} is not an int32`);
    const both = tf.tensor1d([...values, ...values.map((v) => -v)], 'int32');
    let reduced: tf.Tensor;
    try {
      reduced = await this.reduce(both, 'Max', `agree ${label}`);
    } finally {
      both.dispose();
    }
    const r = Array.from(await reduced.data());
    reduced.dispose();
    const mismatch = values.findIndex((_, i) => r[i] !== -r[values.length + i]);
    if (mismatch >= 0) {
      throw new CollectiveError(
        `${label}: the workers disagree (value ${mismatch} ranges from ${-r[values.length + mismatch]} to ${r[mismatch]}; rank ${this.rank} has ${values[mismatch]})`,
      );
    }
  }

  /**
   * Rank 0's tensors, received by every worker: an all-reduce to which the other ranks add
   * zeros, so the result is rank 0's values bit for bit. The inputs stay the caller's.
   */
  async broadcastFromRank0(tensors: readonly tf.Tensor[], label = 'broadcast'): Promise<tf.Tensor[]> {
    if (this.rank === 0) return this.allReduceSum(tensors, label);
    const zeros = tensors.map((t) => tf.zerosLike(t));
    try {
      return await this.allReduceSum(zeros, label);
    } finally {
      tf.dispose(zeros);
    }
  }

  /** Rank 0's int32 values, received by every worker; `timeoutSeconds` 0 waits without limit (health checks still run). */
  async valuesFromRank0(label: string, values: readonly number[], timeoutSeconds = this.timeoutSeconds): Promise<number[]> {
    const mine = tf.tensor1d(this.rank === 0 ? [...values] : values.map(() => 0), 'int32');
    let reduced: tf.Tensor;
    try {
      reduced = await this.reduce(mine, 'Add', label, timeoutSeconds);
    } finally {
      mine.dispose();
    }
    const out = Array.from(await reduced.data());
    reduced.dispose();
    return out;
  }

  /** A last barrier, then the health checks stop: past it, peers may exit without alarming anyone. */
  async finish(label = 'finish'): Promise<void> {
    await this.barrier(label);
    this.close();
  }

  /** Stops the health checks (call after the last collective, before a worker exits). */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The tensors laid end to end, cut every bucketBytes: each bucket as the flat pieces of the tensors it holds. */
  private buckets(tensors: readonly tf.Tensor[]): { index: number; start: number; length: number }[][] {
    const limit = Math.max(1, Math.floor(this.bucketBytes / 4));
    const buckets: { index: number; start: number; length: number }[][] = [];
    let current: { index: number; start: number; length: number }[] = [];
    let size = 0;
    tensors.forEach((t, index) => {
      if (t.dtype !== 'float32') throw new Error(`allReduceSum: tensor ${index} is ${t.dtype}, expected float32`);
      for (let start = 0; start < t.size || (t.size === 0 && start === 0); ) {
        const length = Math.min(t.size - start, limit - size);
        current.push({ index, start, length });
        size += length;
        start += length;
        if (size === limit) {
          buckets.push(current);
          current = [];
          size = 0;
        }
        if (t.size === 0) break;
      }
    });
    if (current.length > 0) buckets.push(current);
    return buckets;
  }

  /**
   * Every worker's 1-D float32 `input` (the same length on all), concatenated in rank order: one
   * CollectiveGatherV2. The result is new; the input stays the caller's.
   */
  async allGather(input: tf.Tensor, label = 'all-gather'): Promise<tf.Tensor> {
    if (input.dtype !== 'float32' || input.rank !== 1) throw new Error(`allGather: expected a 1-D float32 tensor, got ${input.dtype} of shape [${input.shape}]`);
    return this.collective('CollectiveGatherV2', input, [], label, this.timeoutSeconds);
  }

  /** One CollectiveReduceV2 of `input` (float32 or int32) over the group; the result is new. */
  private reduce(input: tf.Tensor, mergeOp: MergeOp, label: string, timeoutSeconds = this.timeoutSeconds): Promise<tf.Tensor> {
    const binding = this.backend.binding;
    const attrs: OpAttr[] = [
      { name: 'merge_op', type: binding.TF_ATTR_STRING, value: mergeOp },
      { name: 'final_op', type: binding.TF_ATTR_STRING, value: 'Id' },
    ];
    return this.collective('CollectiveReduceV2', input, attrs, label, timeoutSeconds);
  }

  /** One collective op (a V2 op: input, group size, group key, instance key) over the group. */
  private async collective(op: 'CollectiveReduceV2' | 'CollectiveGatherV2', input: tf.Tensor, opAttrs: OpAttr[], label: string, timeoutSeconds: number): Promise<tf.Tensor> {
    if (this.closed) throw new CollectiveError(`${label}: the collective group is closed`);
    if (this.failure) throw this.failure;
    const binding = this.backend.binding;
    this.instanceKey += 1;
    const keys = [tf.scalar(this.worldSize, 'int32'), tf.scalar(GROUP_KEY, 'int32'), tf.scalar(this.instanceKey, 'int32')];
    const attrs: OpAttr[] = [
      { name: 'T', type: binding.TF_ATTR_TYPE, value: input.dtype === 'int32' ? binding.TF_INT32 : binding.TF_FLOAT },
      ...opAttrs,
      { name: 'communication_hint', type: binding.TF_ATTR_STRING, value: this.communication },
      { name: 'timeout_seconds', type: binding.TF_ATTR_FLOAT, value: timeoutSeconds },
      { name: 'Nordering_token', type: binding.TF_ATTR_INT, value: 0 },
    ];
    try {
      const ids = this.backend.getInputTensorIds([input, ...keys]);
      const [meta] = await binding.executeOpAsync(op, attrs, ids, 1);
      return this.backend.createOutputTensor(meta);
    } catch (err) {
      throw await this.explain(err as TfError, label, timeoutSeconds);
    } finally {
      tf.dispose(keys);
    }
  }

  /** Turns a failed collective into an error that names the rank(s) at fault when it can. */
  private async explain(err: TfError, label: string, timeoutSeconds: number): Promise<Error> {
    if (this.failure) return this.withContext(this.failure, label);
    if (typeof err.tfCode !== 'number') return err;
    // A dead peer often shows first as a reset connection inside the ring; ask who is down.
    const down = await this.unhealthyPeers();
    if (this.failure) return this.withContext(this.failure, label);
    if (down.length > 0) return this.withContext(this.fail(down), label);
    if (err.tfCode === TF_CODE.DEADLINE_EXCEEDED) {
      const ranks = this.peers.map((p) => p.rank);
      const who = ranks.length === 1 ? `rank ${ranks[0]}` : `one or more of ranks ${ranks.join(', ')}`;
      this.failure = new WorkerFailedError(
        `${label}: ${who} did not join within ${timeoutSeconds} s; ${ranks.length === 1 ? 'its' : 'their'} TensorFlow server answers health checks, ` +
          `so the worker is hung or far slower than the others (raise ${COLLECTIVE_TIMEOUT_ENV} if it is only slow)`,
        ranks,
      );
      return this.failure;
    }
    const remote = /remote target (\/job:[^\s:]+\/replica:\d+\/task:\d+)/.exec(err.message)?.[1];
    const peer = this.peers.find((p) => p.task === remote);
    return new CollectiveError(`${label} failed on rank ${this.rank}${peer ? ` (error from rank ${peer.rank}, ${peer.task})` : ''}: ${firstLine(err.message)}`);
  }

  private withContext(failure: WorkerFailedError, label: string): WorkerFailedError {
    return new WorkerFailedError(`${label} stopped on rank ${this.rank}: ${failure.message}`, failure.ranks);
  }

  /**
   * Waits until every peer's TensorFlow server answers a health check. Why before the startup
   * barrier: a worker still starting probes its port (checkPortBindable) by binding and closing
   * it, and a collective that connects in that window is reset; TensorFlow reports that as a
   * failed collective, which would stop this worker although the other is only late.
   */
  private async waitForPeers(timeoutSeconds: number): Promise<void> {
    const start = Date.now();
    const deadline = start + timeoutSeconds * 1000;
    let nextNote = start + 15_000;
    for (;;) {
      const down = await this.unhealthyPeers();
      if (down.length === 0) return;
      const ranks = down.map((d) => d.rank);
      if (Date.now() >= deadline) {
        throw new WorkerFailedError(`startup: ${rankList(ranks)} did not start within ${timeoutSeconds} s (${down.map((d) => `${d.task}: ${d.reason}`).join('; ')})`, ranks);
      }
      if (Date.now() >= nextNote) {
        // Workers on other machines may start minutes apart; say who is awaited, not just wait.
        this.log(`collective: waiting for ${rankList(ranks)} to start (${Math.round((Date.now() - start) / 1000)} s of ${timeoutSeconds} s)`);
        nextNote += 30_000;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private async unhealthyPeers(): Promise<{ rank: number; task: string; reason: string }[]> {
    const down: { rank: number; task: string; reason: string }[] = [];
    // One at a time: each check holds a libuv pool thread, and a collective may hold another.
    for (const peer of this.peers) {
      try {
        await this.backend.binding.checkCollectivePeerHealth(peer.task, this.healthTimeoutMs);
      } catch (err) {
        down.push({ ...peer, reason: firstLine((err as Error).message) });
      }
    }
    return down;
  }

  private fail(down: { rank: number; task: string; reason: string }[]): WorkerFailedError {
    const message = down.map((d) => `worker ${rankList([d.rank])} (${d.task}) is unreachable: ${d.reason}`).join('; ');
    this.failure = new WorkerFailedError(message, down.map((d) => d.rank));
    this.log(`collective: ${message}; aborting this worker's collectives`);
    this.backend.binding.abortCollectiveOps(message);
    return this.failure;
  }

  private async checkPeers(): Promise<void> {
    if (this.checking || this.closed || this.failure) return;
    this.checking = true;
    try {
      const down = await this.unhealthyPeers();
      if (down.length > 0 && !this.closed && !this.failure) this.fail(down);
    } finally {
      this.checking = false;
    }
  }
}
