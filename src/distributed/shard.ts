/**
 * The deterministic split of a global batch across data-parallel workers. Every worker builds
 * the same global micro-batches from the same data, seed and plan, then computes only its own
 * rows: a contiguous block, the first (n mod W) ranks taking one row more. Each row lands on
 * exactly one rank and the assignment depends only on (n, rank, W), so a resumed run splits
 * every step as the uninterrupted one did.
 */

/** [start, end) of rank's rows among n rows split over worldSize workers. */
export function shardRange(n: number, rank: number, worldSize: number): [number, number] {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new Error(`shardRange: worldSize ${worldSize} must be a positive integer`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new Error(`shardRange: rank ${rank} outside [0, ${worldSize})`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`shardRange: row count ${n} must be a non-negative integer`);
  const base = Math.floor(n / worldSize);
  const extra = n % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

/** This rank's rows of a global micro-batch (its item indices, in plan order). */
export function shardRows<T>(rows: readonly T[], rank: number, worldSize: number): T[] {
  const [start, end] = shardRange(rows.length, rank, worldSize);
  return rows.slice(start, end);
}
