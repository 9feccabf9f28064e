import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/data relative to the repository (tests skip visibly when it is absent). */
export const SHARED_DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url));

export function sharedDataOrSkip(ctx: Mocha.Context, relative: string): string | undefined {
  const path = `${SHARED_DATA}/${relative}`;
  if (existsSync(path)) return path;
  console.warn(`    skipped: ${path} is absent`);
  ctx.skip();
  return undefined;
}
