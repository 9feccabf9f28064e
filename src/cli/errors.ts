/** Bad usage (missing or conflicting options, unknown values): the CLI exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
