import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { progressBar } from '../util/progress.js';
import { describeFetchError } from '../util/net-errors.js';

/** A dataset `prmkit data get` knows: its Hub repo and the files to fetch (Hub path -> local name). */
export interface HubDataset {
  repo: string;
  revision: string;
  files: { path: string; local: string }[];
  /** The --format to read the local files with. */
  format: 'processbench' | 'gsm8k' | 'bon';
}

export const HUB_DATASETS = {
  processbench: {
    repo: 'Qwen/ProcessBench',
    revision: 'main',
    format: 'processbench',
    files: ['gsm8k.json', 'math.json', 'olympiadbench.json', 'omnimath.json'].map((f) => ({ path: f, local: f })),
  },
  gsm8k: {
    repo: 'openai/gsm8k',
    revision: 'main',
    format: 'gsm8k',
    files: [
      { path: 'main/train-00000-of-00001.parquet', local: 'train.parquet' },
      { path: 'main/test-00000-of-00001.parquet', local: 'test.parquet' },
    ],
  },
  math500: {
    repo: 'HuggingFaceH4/MATH-500',
    revision: 'main',
    format: 'bon',
    files: [{ path: 'test.jsonl', local: 'test.jsonl' }],
  },
} satisfies Record<string, HubDataset>;

export type HubDatasetName = keyof typeof HUB_DATASETS;

export const MANIFEST_NAME = 'prmkit-manifest.json';

export interface ManifestEntry {
  path: string;
  local: string;
  url: string;
  size: number;
  sha256: string;
  /** Where the expected sha256 came from: the Hub's X-Linked-Etag (LFS) or only our own hash. */
  verifiedAgainst: 'x-linked-etag' | 'etag' | 'none';
  commit?: string;
  downloadedAt: string;
}

export interface Manifest {
  dataset: string;
  repo: string;
  revision: string;
  endpoint: string;
  files: ManifestEntry[];
}

export interface DownloadOptions {
  /** Target root; files go to <to>/<dataset>/ (default "data"). */
  to?: string;
  /** Hub endpoint (default $HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  revision?: string;
  /** Bearer token (default $HF_TOKEN). */
  token?: string;
  /** Attempts per file before giving up (default 5); each resumes where the last one stopped. */
  attempts?: number;
  /** First retry delay in ms, doubled per attempt (default 1000). */
  retryDelayMs?: number;
  /** Re-download even when the cache verifies. */
  force?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface DownloadResult {
  dir: string;
  manifestPath: string;
  files: (ManifestEntry & { status: 'downloaded' | 'cached' })[];
}

/** The resolve URL of a file in a dataset repo, as the Hub serves it. */
export function resolveUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const base = endpoint.replace(/\/+$/, '');
  const rev = encodeURIComponent(revision);
  return `${base}/datasets/${repo}/resolve/${rev}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Downloads a known dataset from the Hugging Face Hub into <to>/<name>/: resumable (a ".part"
 * file continued with an HTTP Range request, also across retries of a broken transfer),
 * checked against the Hub's sha256 (X-Linked-Etag of LFS files) when given, and recorded with
 * its sha256 in a manifest; files whose hash still matches the manifest are not fetched again.
 */
export async function downloadDataset(name: HubDatasetName, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const spec: HubDataset = HUB_DATASETS[name];
  if (!spec) throw new Error(`unknown dataset "${name}" (have: ${Object.keys(HUB_DATASETS).join(', ')})`);
  const endpoint = opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co';
  const revision = opts.revision ?? spec.revision;
  const token = opts.token ?? process.env.HF_TOKEN;
  const dir = join(opts.to ?? 'data', name);
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, MANIFEST_NAME);
  const previous = await readManifest(manifestPath);
  const manifest: Manifest = { dataset: name, repo: spec.repo, revision, endpoint, files: [] };
  const results: DownloadResult['files'] = [];
  for (const file of spec.files) {
    const local = join(dir, file.local);
    const url = resolveUrl(endpoint, spec.repo, revision, file.path);
    const cached = previous?.revision === revision && previous.repo === spec.repo ? previous.files.find((f) => f.path === file.path) : undefined;
    if (cached && !opts.force && (await sha256OfFile(local).catch(() => undefined)) === cached.sha256) {
      log(`${file.local}: cached (sha256 ${cached.sha256.slice(0, 12)}… verified)`);
      manifest.files.push(cached);
      results.push({ ...cached, status: 'cached' });
      continue;
    }
    const entry = await downloadFile(url, local, file, { token, attempts: opts.attempts ?? 5, retryDelayMs: opts.retryDelayMs ?? 1000, progress: opts.progress, log });
    manifest.files.push(entry);
    results.push({ ...entry, status: 'downloaded' });
    // Written after every file, so an interrupted `data get` keeps what it already verified.
    await writeManifest(manifestPath, manifest);
  }
  await writeManifest(manifestPath, manifest);
  return { dir, manifestPath, files: results };
}

export async function readManifest(path: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, path);
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** An HTTP failure that retrying will not fix (401/403/404...). */
class PermanentHttpError extends Error {}

export interface FileOptions {
  token?: string;
  attempts: number;
  retryDelayMs: number;
  progress?: boolean;
  log: (line: string) => void;
}

export async function downloadFile(url: string, local: string, file: { path: string; local: string }, opts: FileOptions): Promise<ManifestEntry> {
  await mkdir(dirname(local), { recursive: true });
  const part = `${local}.part`;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    try {
      return await fetchToPart(url, local, part, file, opts);
    } catch (e) {
      lastError = e as Error;
      if (e instanceof PermanentHttpError || attempt === opts.attempts) break;
      const delay = opts.retryDelayMs * 2 ** (attempt - 1);
      const have = await stat(part).then((s) => s.size).catch(() => 0);
      opts.log(`${file.local}: ${lastError.message}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1}/${opts.attempts}, resuming at byte ${have})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  throw new Error(`download of ${url} failed: ${lastError?.message ?? 'unknown error'}`);
}

/** Follows redirects by hand so the Hub's X-Linked-Etag (on the redirect) is seen, and the token is not sent to another host. */
async function request(url: string, headers: Record<string, string>, token: string | undefined): Promise<{ res: Response; linkedEtag?: string; commit?: string; finalUrl: string }> {
  let current = url;
  let linkedEtag: string | undefined;
  let commit: string | undefined;
  const origin = new URL(url).origin;
  for (let hop = 0; hop < 10; hop++) {
    const h: Record<string, string> = { ...headers, 'user-agent': 'prmkit' };
    if (token && new URL(current).origin === origin) h.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers: h, redirect: 'manual' });
    } catch (e) {
      // "fetch failed" alone says nothing: name the URL and the cause (DNS, refused, TLS, proxy).
      throw new Error(describeFetchError(current, e));
    }
    linkedEtag ??= cleanEtag(res.headers.get('x-linked-etag'));
    commit ??= res.headers.get('x-repo-commit') ?? undefined;
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      current = new URL(res.headers.get('location')!, current).toString();
      continue;
    }
    return { res, linkedEtag, commit, finalUrl: current };
  }
  throw new Error(`too many redirects from ${url}`);
}

function cleanEtag(raw: string | null): string | undefined {
  if (!raw) return undefined;
  return raw.replace(/^W\//, '').replace(/"/g, '').trim() || undefined;
}

/**
 * What identifies the version of the file a ".part" holds, kept beside it (".part.validator"):
 * a resumed transfer must come from the same version, or the file would be spliced from two.
 */
interface PartValidator {
  url: string;
  /** A strong ETag, quoted as sent (weak ones cannot validate a range). */
  etag?: string;
  lastModified?: string;
  /** The Hub's sha256 of the whole file (X-Linked-Etag on its redirect). */
  linkedEtag?: string;
}

function validatorOf(url: string, res: Response, linkedEtag: string | undefined): PartValidator {
  const etag = res.headers.get('etag') ?? undefined;
  return { url, etag: etag && !etag.startsWith('W/') ? etag : undefined, lastModified: res.headers.get('last-modified') ?? undefined, linkedEtag };
}

async function readValidator(path: string): Promise<PartValidator | null> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as PartValidator;
    return typeof v === 'object' && v !== null && (typeof v.etag === 'string' || typeof v.lastModified === 'string') ? v : null;
  } catch {
    return null;
  }
}

/** Why the answer to a resumed request is not the rest of the version the .part holds, or null. */
function versionChange(before: PartValidator, now: PartValidator): string | null {
  if (before.url !== now.url) return 'the URL changed';
  for (const key of ['linkedEtag', 'etag', 'lastModified'] as const) {
    if (before[key] !== undefined && now[key] !== undefined && before[key] !== now[key]) return `its ${key === 'linkedEtag' ? 'sha256' : key} changed from ${before[key]} to ${now[key]}`;
  }
  return null;
}

async function fetchToPart(url: string, local: string, part: string, file: { path: string; local: string }, opts: FileOptions): Promise<ManifestEntry> {
  const validatorPath = `${part}.validator`;
  let have = await stat(part).then((s) => s.size).catch(() => 0);
  const recorded = have > 0 ? await readValidator(validatorPath) : null;
  if (have > 0 && !recorded) {
    // Nothing says which version these bytes are of: resuming could splice two versions.
    opts.log(`${file.local}: the partial download has no recorded ETag or Last-Modified; downloading from the start`);
    await rm(part, { force: true });
    have = 0;
  }
  // If-Range: the server sends the rest only if the file is still the recorded version, else all of it (200).
  const headers: Record<string, string> = have > 0 && recorded ? { range: `bytes=${have}-`, 'if-range': (recorded.etag ?? recorded.lastModified) as string } : {};
  const { res, linkedEtag, commit } = await request(url, headers, opts.token);
  if (res.status === 416 && have > 0) {
    // The .part is already complete (or stale): start over rather than guess.
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new Error('server refused the resume range (416); restarting from byte 0');
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    throw new PermanentHttpError(`${url}: HTTP ${res.status} (gated or private: set HF_TOKEN to a token with access)`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw new PermanentHttpError(`${url}: HTTP 404 (no such file or revision)`);
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    const err = `${url}: HTTP ${res.status}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentHttpError(err);
    throw new Error(err);
  }
  const current = validatorOf(url, res, linkedEtag);
  if (res.status === 206 && recorded) {
    // A server that ignores If-Range still answers 206: check the version ourselves.
    const changed = versionChange(recorded, current);
    const start = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]);
    if (changed || start !== have) {
      await res.body?.cancel();
      await rm(part, { force: true });
      throw new Error(`the file changed since the partial download (${changed ?? `the server resumed at byte ${start}, not ${have}`}); restarting from byte 0`);
    }
  }
  if (res.status === 200 && have > 0) {
    opts.log(`${file.local}: the server sent the whole file (it changed since the partial download, or ignores ranges); downloading from the start`);
    have = 0;
  }
  if (have === 0) {
    if (current.etag || current.lastModified) await writeFile(validatorPath, `${JSON.stringify(current)}\n`);
    else await rm(validatorPath, { force: true });
  }
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = Number.isFinite(length) ? have + length : 0;
  const etag = cleanEtag(res.headers.get('etag'));
  const hash = createHash('sha256');
  if (have > 0) for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
  const out = createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
  await once(out, 'open');
  const bar = progressBar(`get ${file.local}`, total, { enabled: opts.progress });
  if (have > 0) bar.tick(have);
  let received = have;
  try {
    if (!res.body) throw new Error('empty response body');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      received += chunk.length;
      bar.tick(chunk.length);
      if (!out.write(chunk)) await once(out, 'drain');
    }
  } finally {
    bar.stop();
    await new Promise<void>((resolve) => out.end(() => resolve()));
  }
  if (total > 0 && received !== total) throw new Error(`transfer ended at byte ${received} of ${total}`);
  const sha256 = hash.digest('hex');
  let verifiedAgainst: ManifestEntry['verifiedAgainst'] = 'none';
  const expected = [linkedEtag, etag].find((e) => e !== undefined && /^[0-9a-f]{64}$/.test(e));
  if (expected) {
    if (expected !== sha256) {
      await rm(part, { force: true });
      await rm(validatorPath, { force: true });
      throw new PermanentHttpError(`${file.local}: sha256 ${sha256} does not match the Hub's ${expected}; the partial file was removed`);
    }
    verifiedAgainst = expected === linkedEtag ? 'x-linked-etag' : 'etag';
  }
  await rename(part, local);
  await rm(validatorPath, { force: true });
  opts.log(`${file.local}: ${received} bytes, sha256 ${sha256.slice(0, 12)}…${verifiedAgainst === 'none' ? ' (the Hub gave no sha256 to check against; recorded for the cache)' : ' verified'}`);
  return { path: file.path, local: file.local, url, size: received, sha256, verifiedAgainst, commit, downloadedAt: new Date().toISOString() };
}
