import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { detectFormat } from './read.js';
import type { DataFormat } from './formats.js';
import { downloadFile, MANIFEST_NAME, readManifest, sha256OfFile, writeManifest, type DownloadOptions, type Manifest, type ManifestEntry } from './hub.js';
import { describeFetchError, describeHttpStatus } from '../util/net-errors.js';

/**
 * `prmkit data get hf://OWNER/NAME[@revision][:split]`: any dataset on the Hugging Face Hub,
 * through the Hub's Parquet conversion (every public dataset the dataset viewer supports has
 * one, whatever its original files). The Hub lists it at /api/datasets/{repo}/parquet as
 * {config: {split: [url, ...]}}; each file streams to disk through downloadFile (resumable,
 * sha256-checked, cached by the manifest), and the record format is detected from the first
 * file (Math-Shepherd, PRM800K, TRL stepwise, ProcessBench, ...).
 *
 * The conversion lives on the dataset's `refs/convert/parquet` branch; `@revision` pins a commit
 * of that branch (the manifest records the commit each file came from), so a fetch can be
 * repeated byte for byte. Without it the newest conversion is fetched.
 */

export interface HubRef {
  repo: string;
  revision?: string;
  split?: string;
}

/** Parses hf://OWNER/NAME[@revision][:split]; throws with what a valid reference looks like. */
export function parseHubRef(text: string): HubRef {
  const m = /^hf:\/\/([\w.-]+\/[\w.-]+)(?:@([^:\s]+))?(?::([\w.-]+))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a Hub dataset reference: expected hf://OWNER/NAME[@revision][:split], e.g. hf://peiyi9979/Math-Shepherd:train`);
  return { repo: m[1], ...(m[2] ? { revision: m[2] } : {}), ...(m[3] ? { split: m[3] } : {}) };
}

export interface ParquetFile {
  config: string;
  split: string;
  /** Shard number in the listing's URL (…/{config}/{split}/{n}.parquet). */
  shard: number;
  url: string;
}

/** The listing, checked: config -> split -> urls of .parquet files. */
export function parseListing(json: unknown, where: string): ParquetFile[] {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: expected {config: {split: [url, ...]}}, got ${JSON.stringify(json)?.slice(0, 200)}`);
  const files: ParquetFile[] = [];
  for (const [config, splits] of Object.entries(json as Record<string, unknown>)) {
    if (splits === null || typeof splits !== 'object' || Array.isArray(splits)) throw new Error(`${where}: config "${config}" is not {split: [url, ...]}`);
    for (const [split, urls] of Object.entries(splits as Record<string, unknown>)) {
      if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) throw new Error(`${where}: ${config}/${split} is not a list of URLs`);
      (urls as string[]).forEach((url, i) => {
        const shard = /\/(\d+)\.parquet$/.exec(new URL(url).pathname);
        files.push({ config, split, shard: shard ? Number(shard[1]) : i, url });
      });
    }
  }
  return files;
}

/** The options of the named datasets' download; the revision is part of the hf:// reference. */
export type HubGetOptions = Omit<DownloadOptions, 'revision'>;

export interface HubGetResult {
  dir: string;
  manifestPath: string;
  files: (ManifestEntry & { status: 'downloaded' | 'cached' })[];
  format: DataFormat | undefined;
}

async function getJson(url: string, token: string | undefined): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { 'user-agent': 'prmkit', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  } catch (e) {
    throw new Error(describeFetchError(url, e));
  }
  const text = await res.text();
  if (!res.ok) throw new Error(describeHttpStatus(url, res.status, res.statusText, text));
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

/** Downloads the Parquet conversion of a Hub dataset into <to>/<OWNER>--<NAME>/ and detects its format. */
export async function getHubDataset(ref: HubRef, opts: HubGetOptions = {}): Promise<HubGetResult> {
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const token = opts.token ?? process.env.HF_TOKEN;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const listingUrl = `${endpoint}/api/datasets/${ref.repo}/parquet`;
  let files = parseListing(await getJson(listingUrl, token), listingUrl);
  if (files.length === 0) throw new Error(`${listingUrl}: the Hub lists no Parquet files (the dataset viewer has not converted this dataset)`);
  if (ref.split !== undefined) {
    const splits = [...new Set(files.map((f) => f.split))];
    files = files.filter((f) => f.split === ref.split);
    if (files.length === 0) throw new Error(`hf://${ref.repo} has no split "${ref.split}" (splits: ${splits.join(', ')})`);
  }
  const dir = join(opts.to ?? 'data', ref.repo.replace('/', '--'));
  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, MANIFEST_NAME);
  const previous = await readManifest(manifestPath);
  const revision = ref.revision ?? 'refs/convert/parquet';
  const manifest: Manifest = { dataset: `hf://${ref.repo}`, repo: ref.repo, revision, endpoint, files: [] };
  const results: HubGetResult['files'] = [];
  for (const file of files) {
    const local = `${file.config}-${file.split}-${String(file.shard).padStart(4, '0')}.parquet`;
    // A pinned revision reads the conversion branch at that commit; the listing names the files.
    const url = ref.revision
      ? `${endpoint}/datasets/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${encodeURIComponent(file.config)}/${encodeURIComponent(file.split)}/${String(file.shard).padStart(4, '0')}.parquet`
      : file.url;
    const path = `${file.config}/${file.split}/${file.shard}`;
    const cached = previous?.revision === revision && previous.repo === ref.repo ? previous.files.find((f) => f.path === path && f.url === url) : undefined;
    if (cached && !opts.force && ref.revision !== undefined && (await sha256OfFile(join(dir, local)).catch(() => undefined)) === cached.sha256) {
      log(`${local}: cached (sha256 ${cached.sha256.slice(0, 12)}… verified)`);
      manifest.files.push(cached);
      results.push({ ...cached, status: 'cached' });
      continue;
    }
    const entry = await downloadFile(url, join(dir, local), { path, local }, { token, attempts: opts.attempts ?? 5, retryDelayMs: opts.retryDelayMs ?? 1000, progress: opts.progress, log });
    manifest.files.push(entry);
    results.push({ ...entry, status: 'downloaded' });
    await writeManifest(manifestPath, manifest);
  }
  await writeManifest(manifestPath, manifest);
  const { format } = await detectFormat(join(dir, results[0].local));
  const commits = [...new Set(results.map((f) => f.commit).filter((c) => c !== undefined))];
  if (commits.length === 1 && ref.revision === undefined) log(`hf://${ref.repo}: Parquet conversion at commit ${commits[0]} (repeat exactly with hf://${ref.repo}@${commits[0]}${ref.split ? `:${ref.split}` : ''})`);
  return { dir, manifestPath, files: results, format };
}
