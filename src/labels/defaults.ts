/**
 * The choices and defaults of labeling, written once: the recipe schema, the `prmkit label` options and the
 * library functions all read them here. No imports, so the CLI can show them in `--help` cheaply.
 */

export const CLIENT_DEFAULTS = {
  /** Requests in flight at once, over all endpoints. */
  concurrency: 16,
  /** Retries of one request before it fails. */
  retries: 8,
  /** Per-attempt timeout: n completions of a long solution take a while. */
  timeoutSeconds: 300,
  /** First backoff delay; doubles per retry, with jitter, up to maxBackoffMs. */
  backoffMs: 500,
  maxBackoffMs: 30_000,
  /** Bytes of one reply (a server that never stops writing is cut off here; not retried). */
  maxReplyBytes: 16 * 1024 * 1024,
  /** Seconds one request may take over all its attempts and backoffs. */
  deadlineSeconds: 900,
} as const;

/** How MC finds the first negative prefix: every prefix in turn, or binary search (OmegaPRM). */
export const MC_SEARCHES = ['linear', 'binary'] as const;
/** What MC writes in `labels`: hard 0/1, or the soft shares of correct completions. */
export const MC_LABEL_KINDS = ['hard', 'soft'] as const;

export const MC_DEFAULTS = {
  /** Completions per step prefix, K. */
  rollouts: 8,
  /** Hard label = soft label > threshold; 0: any correct completion makes a step positive. */
  threshold: 0,
  search: 'linear' as (typeof MC_SEARCHES)[number],
  /** What goes in `labels` (the soft labels are always in meta.softLabels). */
  labels: 'hard' as (typeof MC_LABEL_KINDS)[number],
  temperature: 0.7,
  maxTokens: 1024,
} as const;

export const JUDGE_DEFAULTS = {
  /** The first ask is greedy. */
  temperature: 0,
  /** Re-asks after an unparsable reply sample (greedy would repeat itself). */
  retryTemperature: 0.7,
  parseRetries: 2,
} as const;

/** A labeling run gives up once more samples than this have failed. */
export const MAX_FAILED_SAMPLES = 10;
