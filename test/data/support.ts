import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'mocha';

/** Repo root and the shared reference data next to it (../shared/data). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHARED_DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/data', import.meta.url));

/** Skips the calling test (visibly) when ../shared/data is absent. */
export function needSharedData(ctx: Context, sub = ''): string {
  const path = join(SHARED_DATA, sub);
  if (!existsSync(path)) {
    console.warn(`      (skipped: ${path} is absent)`);
    ctx.skip();
  }
  return path;
}

/** A fresh temp directory per test file; remove it in after(). */
export async function tempDir(prefix = 'prmkit-data-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeJsonlFile(path: string, records: unknown[]): Promise<string> {
  await writeFile(path, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return path;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
