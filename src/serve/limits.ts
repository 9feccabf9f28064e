/**
 * What one request and the server as a whole may cost. Every bound turns into a status code the
 * client can act on (413 too large, 503 busy) instead of memory or latency that grows without end.
 */
export interface ServeLimits {
  /** Request body size; larger bodies get 413 while they stream in (never buffered whole). */
  maxBodyBytes: number;
  /** Steps in one request, summed over its items (413 beyond). */
  maxSteps: number;
  /** Tokens in one request, summed over its encoded items (413 beyond). */
  maxTokens: number;
  /** Requests admitted and not yet answered; one more gets 503 with Retry-After. */
  maxQueue: number;
  /**
   * A request body must arrive whole within this (408 beyond). Bodies are read before a
   * request takes a queue slot, so a slow upload holds no slot, only this much time.
   */
  bodyTimeoutMs: number;
  /** Bodies being received at once from one client address (429 beyond): trickling uploads cannot crowd others out. */
  maxBodiesPerAddress: number;
  /** Bodies being received at once from all clients (503 beyond): bounds their memory to this x maxBodyBytes. */
  maxBodiesReading: number;
}

export interface BatchingOptions {
  /** Padded tokens (rows x longest row) of one forward pass. */
  maxBatchTokens: number;
  /** How long the oldest queued request waits for others to share its forward pass. */
  maxWaitMs: number;
  /** Distinct requests in one forward pass; 1 turns batching across requests off. */
  maxBatchRequests: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBodyBytes: 1 << 20,
  maxSteps: 256,
  maxTokens: 32768,
  maxQueue: 256,
  bodyTimeoutMs: 10_000,
  maxBodiesPerAddress: 8,
  maxBodiesReading: 512,
};

// A server wants short forward passes (latency) more than the largest batch: on CPU backends a
// pass past a few thousand padded tokens costs more per token (its attention tensors leave the
// cache), see scripts/bench/load-serve.ts. Raise it on a GPU.
export const DEFAULT_BATCHING: BatchingOptions = {
  maxBatchTokens: 2048,
  maxWaitMs: 5,
  maxBatchRequests: Number.POSITIVE_INFINITY,
};

/** Checks that every given limit is a positive integer (maxWaitMs may be 0); names the bad one. */
export function checkPositive(values: Record<string, number | undefined>, allowZero: readonly string[] = []): void {
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === Number.POSITIVE_INFINITY) continue;
    const min = allowZero.includes(name) ? 0 : 1;
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
    }
  }
}
