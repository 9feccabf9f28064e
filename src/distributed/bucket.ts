/** Environment variable: MiB of one all-reduce bucket of the collectives (DDP's bucket_cap_mb). */
export const COLLECTIVE_BUCKET_ENV = 'PRMKIT_COLLECTIVE_BUCKET_MB';
export const DEFAULT_BUCKET_MB = 64;

/** Bytes of one all-reduce bucket: PRMKIT_COLLECTIVE_BUCKET_MB, or 64 MiB. */
export function bucketBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[COLLECTIVE_BUCKET_ENV]?.trim();
  if (!raw) return DEFAULT_BUCKET_MB * 1024 * 1024;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb <= 0) throw new Error(`${COLLECTIVE_BUCKET_ENV}=${raw}: expected a positive number of MiB`);
  return Math.max(4, Math.round(mb * 1024 * 1024));
}
