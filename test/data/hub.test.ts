import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { downloadDataset, MANIFEST_NAME, resolveUrl, type Manifest } from '../../src/data/hub.js';
import { readProcessBench } from '../../src/data/processbench.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { REPO_ROOT, SHARED_DATA, tempDir } from './support.js';

interface Served {
  bytes: Buffer;
  /** Cut the first full transfer after this many bytes (then the client must resume). */
  cutAfter?: number;
  /** Advertise this sha256 instead of the real one (to test verification). */
  wrongSha?: boolean;
  /** Send no X-Linked-Etag (a file outside LFS): only ETag and Last-Modified identify the version. */
  noLinkedEtag?: boolean;
  /** Answer a Range request with 206 even when If-Range names another version (a non-conforming server). */
  ignoreIfRange?: boolean;
  lastModified?: string;
}

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A loopback stand-in for the Hub: /datasets/<repo>/resolve/<rev>/<path> answers 302 to a
 * "CDN" URL with X-Linked-Etag (the LFS sha256) as huggingface.co does; the CDN URL serves the
 * bytes with Range support and can cut a transfer half-way once.
 */
async function startHub(files: Map<string, Served>): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const cut = new Set<string>();
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://x');
    const resolve = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const key = `${resolve[1]}/${decodeURIComponent(resolve[3])}`;
      const file = files.get(key);
      if (!file || resolve[2] !== 'main') {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
        return;
      }
      const sha = file.wrongSha ? '0'.repeat(64) : createHash('sha256').update(file.bytes).digest('hex');
      res.writeHead(302, { location: `/cdn/${encodeURIComponent(key)}`, ...(file.noLinkedEtag ? {} : { 'x-linked-etag': `"${sha}"` }), 'x-repo-commit': 'c0ffee' }).end();
      return;
    }
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const file = cdn ? files.get(decodeURIComponent(cdn[1])) : undefined;
    if (!cdn || !file) {
      res.writeHead(404).end();
      return;
    }
    const key = decodeURIComponent(cdn[1]);
    const etag = `"${createHash('sha256').update(file.bytes).digest('hex').slice(0, 16)}"`;
    const lastModified = file.lastModified ?? 'Mon, 07 Dec 2026 00:00:00 GMT';
    const ifRange = req.headers['if-range'];
    const sameVersion = ifRange === undefined || ifRange === etag || ifRange === lastModified;
    const range = sameVersion || file.ignoreIfRange ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
    const start = range ? Number(range[1]) : 0;
    if (start > file.bytes.length) {
      res.writeHead(416).end();
      return;
    }
    const body = file.bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      etag,
      'last-modified': lastModified,
      ...(range ? { 'content-range': `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}` } : {}),
    });
    if (file.cutAfter !== undefined && !range && !cut.has(key + etag)) {
      cut.add(key + etag);
      // Part of the body, a pause so the client takes it in, then the connection drops.
      res.write(body.subarray(0, file.cutAfter), () => setTimeout(() => res.socket?.destroy(), 300));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** GSM8K as the Hub serves it (Parquet, columns question/answer), built from the shared JSONL. */
async function gsm8kParquet(split: string): Promise<Buffer> {
  const rows = (await readFile(join(SHARED_DATA, 'gsm8k', `${split}.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { question: string; answer: string });
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'question', data: rows.map((r) => r.question), type: 'STRING' },
      { name: 'answer', data: rows.map((r) => r.answer), type: 'STRING' },
    ],
  });
  return Buffer.from(buf);
}

describe('data get (Hugging Face Hub download) against a loopback server', function () {
  this.timeout(60_000);
  let hub: Awaited<ReturnType<typeof startHub>>;
  let files: Map<string, Served>;
  let dir: string;
  let cleanup: () => Promise<void>;
  const quiet = { progress: false, retryDelayMs: 10, log: () => undefined };

  before(async function () {
    if (!existsSync(SHARED_DATA)) {
      console.warn(`      (skipped: ${SHARED_DATA} is absent)`);
      this.skip();
    }
    ({ dir, cleanup } = await tempDir('prmkit-hub-'));
    files = new Map();
    for (const subset of ['gsm8k', 'math', 'olympiadbench', 'omnimath']) {
      const bytes = await readFile(join(SHARED_DATA, 'processbench', `${subset}.json`));
      files.set(`Qwen/ProcessBench/${subset}.json`, { bytes, cutAfter: subset === 'math' ? 700_000 : undefined });
    }
    files.set('openai/gsm8k/main/test-00000-of-00001.parquet', { bytes: await gsm8kParquet('test') });
    files.set('openai/gsm8k/main/train-00000-of-00001.parquet', { bytes: await gsm8kParquet('train') });
    // No MATH-500 copy exists in ../shared/data: a 3-problem file in its layout stands in.
    const math500 = [0, 1, 2].map((i) => JSON.stringify({ problem: `What is ${i}+1?`, solution: `$\\boxed{${i + 1}}$`, answer: String(i + 1), subject: 'Prealgebra', level: 1, unique_id: `test/prealgebra/${i}.json` }));
    files.set('HuggingFaceH4/MATH-500/test.jsonl', { bytes: Buffer.from(math500.join('\n') + '\n') });
    hub = await startHub(files);
  });

  after(async () => {
    // A download the tests cut on purpose may still hold its connection: close them all, or
    // close() waits for them.
    if (hub) {
      hub.server.closeAllConnections();
      await new Promise((resolve) => hub.server.close(resolve));
    }
    await cleanup?.();
  });

  it('builds resolve URLs the way the Hub lays them out', () => {
    expect(resolveUrl('https://huggingface.co/', 'Qwen/ProcessBench', 'main', 'gsm8k.json')).to.equal('https://huggingface.co/datasets/Qwen/ProcessBench/resolve/main/gsm8k.json');
    expect(resolveUrl('http://h', 'openai/gsm8k', 'refs/convert/parquet', 'main/x y.parquet')).to.equal('http://h/datasets/openai/gsm8k/resolve/refs%2Fconvert%2Fparquet/main/x%20y.parquet');
  });

  it('processbench: downloads all 4 subsets, resumes the interrupted one with a Range request, verifies sha256, reads 3,400 samples', async () => {
    const to = join(dir, 'data');
    const before = hub.seen.length;
    const result = await downloadDataset('processbench', { ...quiet, to, endpoint: hub.url, token: 'hf_test_token' });
    expect(result.files.map((f) => [f.local, f.status, f.verifiedAgainst])).to.deep.equal([
      ['gsm8k.json', 'downloaded', 'x-linked-etag'],
      ['math.json', 'downloaded', 'x-linked-etag'],
      ['olympiadbench.json', 'downloaded', 'x-linked-etag'],
      ['omnimath.json', 'downloaded', 'x-linked-etag'],
    ]);
    for (const f of result.files) {
      const local = await readFile(join(to, 'processbench', f.local));
      expect(sha256(local)).to.equal(sha256(files.get(`Qwen/ProcessBench/${f.local}`)!.bytes));
      expect(f.sha256).to.equal(sha256(local));
    }
    const requests = hub.seen.slice(before);
    const mathCdn = requests.filter((r) => r.url === `/cdn/${encodeURIComponent('Qwen/ProcessBench/math.json')}`);
    // First a full GET that the server cuts after 700,000 bytes, then one resuming from what arrived.
    expect(mathCdn).to.have.length(2);
    expect(mathCdn[0].headers.range).to.equal(undefined);
    // (A client may lose bytes still in flight when the connection drops, so only "some, at most all".)
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(mathCdn[1].headers.range ?? '')?.[1]);
    expect(resumedAt).to.be.greaterThan(0).and.at.most(700_000);
    // The token goes with every request to the (same-origin) Hub.
    expect(requests.every((r) => r.headers.authorization === 'Bearer hf_test_token')).to.equal(true);
    expect(existsSync(join(to, 'processbench', 'math.json.part'))).to.equal(false);
    const manifest = JSON.parse(await readFile(join(to, 'processbench', MANIFEST_NAME), 'utf8')) as Manifest;
    expect(manifest).to.deep.include({ dataset: 'processbench', repo: 'Qwen/ProcessBench', revision: 'main', endpoint: hub.url });
    expect(manifest.files.map((f) => f.commit)).to.deep.equal(['c0ffee', 'c0ffee', 'c0ffee', 'c0ffee']);
    expect(await readProcessBench(join(to, 'processbench'))).to.have.length(3400);
    // The manifest next to the data is not read as data.
    expect((await readAllStepSamples(join(to, 'processbench'), { format: 'processbench' })).stats.files).to.have.length(4);
  });

  it('a second run verifies the cache by sha256 and fetches nothing; a corrupted file is fetched again', async () => {
    const to = join(dir, 'data');
    const before = hub.seen.length;
    const again = await downloadDataset('processbench', { ...quiet, to, endpoint: hub.url });
    expect(again.files.map((f) => f.status)).to.deep.equal(['cached', 'cached', 'cached', 'cached']);
    expect(hub.seen.length).to.equal(before);
    await writeFile(join(to, 'processbench', 'omnimath.json'), 'corrupted');
    const repaired = await downloadDataset('processbench', { ...quiet, to, endpoint: hub.url });
    expect(repaired.files.map((f) => f.status)).to.deep.equal(['cached', 'cached', 'cached', 'downloaded']);
    expect(sha256(await readFile(join(to, 'processbench', 'omnimath.json')))).to.equal(sha256(files.get('Qwen/ProcessBench/omnimath.json')!.bytes));
  });

  it('continues a .part file left by an earlier run with a Range request guarded by If-Range (its recorded ETag)', async () => {
    const to = join(dir, 'resume');
    const bytes = files.get('HuggingFaceH4/MATH-500/test.jsonl')!.bytes;
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(to, 'math500'), { recursive: true });
    await writeFile(join(to, 'math500', 'test.jsonl.part'), bytes.subarray(0, 100));
    const etag = `"${sha256(bytes).slice(0, 16)}"`;
    const url = `${hub.url}/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl`;
    await writeFile(join(to, 'math500', 'test.jsonl.part.validator'), JSON.stringify({ url, etag }));
    const before = hub.seen.length;
    const result = await downloadDataset('math500', { ...quiet, to, endpoint: hub.url });
    expect(result.files[0].status).to.equal('downloaded');
    const cdn = hub.seen.slice(before).filter((r) => r.url.startsWith('/cdn/'));
    expect(cdn.map((r) => [r.headers.range, r.headers['if-range']])).to.deep.equal([['bytes=100-', etag]]);
    expect(existsSync(join(to, 'math500', 'test.jsonl.part.validator'))).to.equal(false);
    expect(await readFile(join(to, 'math500', 'test.jsonl'))).to.deep.equal(bytes);
    const { samples } = await readAllStepSamples(join(to, 'math500', 'test.jsonl'), { format: 'bon' });
    expect(samples).to.have.length(0); // a bare test set: problems with answers, no responses yet
  });

  it('a sha256 mismatch with the Hub is an error and leaves no file behind', async () => {
    const key = 'HuggingFaceH4/MATH-500/test.jsonl';
    const original = files.get(key)!;
    files.set(key, { ...original, wrongSha: true });
    try {
      const to = join(dir, 'mismatch');
      const err = (await downloadDataset('math500', { ...quiet, to, endpoint: hub.url }).catch((e) => e)) as Error;
      expect(err.message).to.match(/sha256 [0-9a-f]{64} does not match the Hub's 0{64}/);
      expect(existsSync(join(to, 'math500', 'test.jsonl'))).to.equal(false);
      expect(existsSync(join(to, 'math500', 'test.jsonl.part'))).to.equal(false);
    } finally {
      files.set(key, original);
    }
  });

  it('a missing revision is a clear 404 error without retries', async () => {
    const before = hub.seen.length;
    const err = (await downloadDataset('math500', { ...quiet, to: join(dir, 'nf'), endpoint: hub.url, revision: 'v9' }).catch((e) => e)) as Error;
    expect(err.message).to.include('/datasets/HuggingFaceH4/MATH-500/resolve/v9/test.jsonl: HTTP 404');
    expect(hub.seen.length - before).to.equal(1);
  });

  it('CLI: HF_ENDPOINT is honoured; `prmkit data get gsm8k --to DIR` fetches the Parquet splits that read as GSM8K', async () => {
    const to = join(dir, 'cli');
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'data', 'get', 'gsm8k', '--to', to], {
        cwd: REPO_ROOT,
        env: { ...process.env, HF_ENDPOINT: hub.url, PRMKIT_NO_PROGRESS: '1', HF_TOKEN: '' },
      });
      let err = '';
      child.stderr.on('data', (d) => (err += String(d)));
      child.on('close', (c) => resolve({ code: c, stderr: err }));
    });
    expect(code, stderr).to.equal(0);
    expect(stderr).to.include('read it with --format gsm8k');
    expect((await stat(join(to, 'gsm8k', 'test.parquet'))).size).to.equal(files.get('openai/gsm8k/main/test-00000-of-00001.parquet')!.bytes.length);
    const { samples } = await readAllStepSamples(join(to, 'gsm8k', 'test.parquet'), { format: 'gsm8k' });
    expect(samples).to.have.length(1319);
    expect(samples[0]).to.deep.include({ id: 'gsm8k-test-0', answer: '18' });
    expect(samples[0].steps.join(' ')).to.not.include('<<');
    const train = await readAllStepSamples(join(to, 'gsm8k', 'train.parquet'), { format: 'gsm8k' });
    expect(train.samples).to.have.length(7473);
  });

  describe('a file that changed upstream after a download was cut (no sha256 from the Hub)', () => {
    const key = 'HuggingFaceH4/MATH-500/test.jsonl';
    const v1 = Buffer.from(Array.from({ length: 400 }, (_, i) => JSON.stringify({ problem: `v1 ${i}`, answer: String(i) })).join('\n') + '\n');
    const v2 = Buffer.from(Array.from({ length: 400 }, (_, i) => JSON.stringify({ problem: `v2 ${i}`, answer: String(i) })).join('\n') + '\n');
    let original: Served;
    before(() => (original = files.get(key)!));
    afterEach(() => files.set(key, original));

    async function cutThenChange(to: string, second: Partial<Served>): Promise<{ manifest: Manifest; requests: Seen[] }> {
      // The loopback Hub cuts each version once: a first version of its own per test.
      files.set(key, { bytes: Buffer.concat([Buffer.from(`${JSON.stringify({ problem: to, answer: '0' })}\n`), v1]), cutAfter: 5000, noLinkedEtag: true });
      const err = await downloadDataset('math500', { ...quiet, to, endpoint: hub.url, attempts: 1 }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect(existsSync(join(to, 'math500', 'test.jsonl.part'))).to.equal(true);
      files.set(key, { bytes: v2, noLinkedEtag: true, lastModified: 'Tue, 08 Dec 2026 00:00:00 GMT', ...second });
      const before = hub.seen.length;
      const result = await downloadDataset('math500', { ...quiet, to, endpoint: hub.url });
      expect(result.files[0].status).to.equal('downloaded');
      const manifest = JSON.parse(await readFile(join(to, 'math500', MANIFEST_NAME), 'utf8')) as Manifest;
      return { manifest, requests: hub.seen.slice(before).filter((r) => r.url.startsWith('/cdn/')) };
    }

    it('sends If-Range, gets the whole new version (200) and records exactly it', async () => {
      const to = join(dir, 'changed');
      const { manifest, requests } = await cutThenChange(to, {});
      expect(requests[0].headers['if-range']).to.match(/^"[0-9a-f]{16}"$/);
      expect(await readFile(join(to, 'math500', 'test.jsonl'))).to.deep.equal(v2);
      expect(manifest.files[0].sha256).to.equal(sha256(v2));
    });

    it('a server that ignores If-Range and answers 206 anyway: the changed ETag is caught and the download restarts', async () => {
      const to = join(dir, 'changed-206');
      const { manifest, requests } = await cutThenChange(to, { ignoreIfRange: true });
      expect(requests.map((r) => r.headers.range === undefined)).to.deep.equal([false, true]);
      expect(await readFile(join(to, 'math500', 'test.jsonl'))).to.deep.equal(v2);
      expect(manifest.files[0].sha256).to.equal(sha256(v2));
    });

    it('a .part with no recorded validator is not resumed', async () => {
      const to = join(dir, 'no-validator');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(to, 'math500'), { recursive: true });
      await writeFile(join(to, 'math500', 'test.jsonl.part'), v1.subarray(0, 3000));
      files.set(key, { bytes: v2, noLinkedEtag: true });
      const before = hub.seen.length;
      await downloadDataset('math500', { ...quiet, to, endpoint: hub.url });
      expect(hub.seen.slice(before).filter((r) => r.url.startsWith('/cdn/')).map((r) => r.headers.range)).to.deep.equal([undefined]);
      expect(await readFile(join(to, 'math500', 'test.jsonl'))).to.deep.equal(v2);
    });
  });
});
