import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHubDataset, parseHubRef } from '../../src/data/hub-parquet.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { runDataGet } from '../../src/cli/commands/data.js';

process.env.PRMKIT_NO_PROGRESS = '1';

const fixture = (path: string): Buffer => readFileSync(new URL(`../fixtures/${path}`, import.meta.url));
const SHEPHERD = fixture('data/math_shepherd.parquet');
const TRL = fixture('data/trl_float.parquet');
const TRL_TEST = fixture('data/trl_bool.parquet');
const COMMIT = '3f0c5e1d2b4a69788a9c0d1e2f3a4b5c6d7e8f90';

/**
 * A loopback Hub with recorded responses: the Parquet listing (test/fixtures/hub), its API file
 * URLs redirecting to the conversion branch's resolve URLs, which redirect to a "CDN" with the
 * LFS sha256 (X-Linked-Etag) and the commit (X-Repo-Commit), as huggingface.co answers.
 */
async function startHub(): Promise<{ server: Server; base: string; seen: string[] }> {
  const seen: string[] = [];
  const listings: Record<string, string> = { 'peiyi9979/Math-Shepherd': 'hub/math-shepherd.parquet.json', 'trl-lib/math_shepherd': 'hub/trl-stepwise.parquet.json' };
  const bytes: Record<string, Buffer> = {
    'peiyi9979/Math-Shepherd/default/train/0000.parquet': SHEPHERD,
    'trl-lib/math_shepherd/default/train/0000.parquet': TRL,
    'trl-lib/math_shepherd/default/train/0001.parquet': TRL,
    'trl-lib/math_shepherd/default/test/0000.parquet': TRL_TEST,
  };
  let base = '';
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    seen.push(path);
    let m = /^\/api\/datasets\/([^/]+\/[^/]+)\/parquet$/.exec(path);
    if (m) {
      if (!listings[m[1]]) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `Repository not found` }));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(fixture(listings[m[1]]).toString('utf8').replaceAll('{BASE}', base));
    }
    m = /^\/api\/datasets\/([^/]+\/[^/]+)\/parquet\/([^/]+)\/([^/]+)\/(\d+)\.parquet$/.exec(path);
    if (m) {
      const target = `/datasets/${m[1]}/resolve/${encodeURIComponent('refs/convert/parquet')}/${m[2]}/${m[3]}/${m[4].padStart(4, '0')}.parquet`;
      return void res.writeHead(302, { location: target }).end();
    }
    m = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+(?:\/convert\/parquet)?)\/(.+)$/.exec(path);
    if (m) {
      const body = bytes[`${m[1]}/${m[3]}`];
      if (!body || (m[2] !== 'refs/convert/parquet' && m[2] !== COMMIT)) return void res.writeHead(404).end('Entry not found');
      const sha = createHash('sha256').update(body).digest('hex');
      return void res.writeHead(302, { location: `/cdn/${m[1]}/${m[3]}`, 'x-linked-etag': `"${sha}"`, 'x-repo-commit': COMMIT }).end();
    }
    m = /^\/cdn\/(.+)$/.exec(path);
    if (m && bytes[m[1]]) return void res.writeHead(200, { 'content-length': String(bytes[m[1]].length) }).end(bytes[m[1]]);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, base, seen };
}

describe('data get hf://OWNER/NAME: any Hub dataset through its Parquet listing', function () {
  this.timeout(60_000);
  let hub: Awaited<ReturnType<typeof startHub>>;
  const quiet = (): void => {};
  before(async () => {
    hub = await startHub();
  });
  after(() => new Promise<void>((resolve) => hub.server.close(() => resolve())));

  it('parses references and refuses malformed ones', () => {
    expect(parseHubRef('hf://peiyi9979/Math-Shepherd')).to.deep.equal({ repo: 'peiyi9979/Math-Shepherd' });
    expect(parseHubRef('hf://trl-lib/math_shepherd@abc123:test')).to.deep.equal({ repo: 'trl-lib/math_shepherd', revision: 'abc123', split: 'test' });
    expect(() => parseHubRef('hf://only-owner')).to.throw(/expected hf:\/\/OWNER\/NAME\[@revision\]\[:split\]/);
  });

  it('fetches Math-Shepherd by name, verifies it, detects its format and reads its records', async () => {
    const to = mkdtempSync(join(tmpdir(), 'prmkit-hubpq-'));
    const result = await getHubDataset(parseHubRef('hf://peiyi9979/Math-Shepherd:train'), { endpoint: hub.base, to, log: quiet });
    expect(result.format).to.equal('math-shepherd');
    expect(result.files).to.have.lengthOf(1);
    expect(result.files[0]).to.include({ local: 'default-train-0000.parquet', verifiedAgainst: 'x-linked-etag', commit: COMMIT, status: 'downloaded' });
    expect(readFileSync(join(result.dir, 'default-train-0000.parquet')).equals(SHEPHERD)).to.equal(true);
    const { samples } = await readAllStepSamples(result.dir, { format: 'math-shepherd' });
    expect(samples).to.have.lengthOf(5);
    expect(samples[1].labels).to.deep.equal([0, 0]);
  });

  it('takes one split of a TRL stepwise dataset (two shards), and names the splits when one is missing', async () => {
    const to = mkdtempSync(join(tmpdir(), 'prmkit-hubpq-'));
    const lines: string[] = [];
    // The command reads the Hub's address from HF_ENDPOINT, as for the known datasets.
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = hub.base;
    let got;
    try {
      got = await runDataGet({ dataset: 'hf://trl-lib/math_shepherd:train', to, force: false }, (l) => lines.push(l));
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
    expect(got.format).to.equal('trl');
    expect(lines.at(-1)).to.match(/2 Parquet files.*format trl: read it with --format trl/);
    expect(lines.some((l) => l.includes(`repeat exactly with hf://trl-lib/math_shepherd@${COMMIT}:train`))).to.equal(true);
    let error: unknown;
    await getHubDataset(parseHubRef('hf://trl-lib/math_shepherd:validation'), { endpoint: hub.base, to, log: quiet }).catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/has no split "validation" \(splits: train, test\)/);
  });

  it('pins a revision of the conversion branch, and serves a pinned fetch from the cache the second time', async () => {
    const to = mkdtempSync(join(tmpdir(), 'prmkit-hubpq-'));
    const ref = parseHubRef(`hf://trl-lib/math_shepherd@${COMMIT}:test`);
    hub.seen.length = 0;
    const first = await getHubDataset(ref, { endpoint: hub.base, to, log: quiet });
    expect(hub.seen).to.include(`/datasets/trl-lib/math_shepherd/resolve/${COMMIT}/default/test/0000.parquet`);
    expect(first.files.map((f) => f.status)).to.deep.equal(['downloaded']);
    const second = await getHubDataset(ref, { endpoint: hub.base, to, log: quiet });
    expect(second.files.map((f) => f.status)).to.deep.equal(['cached']);
    expect(second.format).to.equal('trl');
    const wrong = await getHubDataset(parseHubRef('hf://trl-lib/math_shepherd@0000000:test'), { endpoint: hub.base, to, log: quiet, attempts: 1 }).catch((e: unknown) => e);
    expect(String(wrong)).to.match(/resolve\/0000000\/default\/test\/0000\.parquet: HTTP 404/);
  });

  it('says why when the Hub cannot be reached or refuses: HTTP status, refused connection, DNS, proxy, TLS', async () => {
    const to = mkdtempSync(join(tmpdir(), 'prmkit-hubpq-'));
    const fail = (ref: string, endpoint: string) => getHubDataset(parseHubRef(ref), { endpoint, to, log: quiet, attempts: 1 }).then(() => '', (e: unknown) => String(e));
    expect(await fail('hf://nobody/nothing', hub.base)).to.match(
      new RegExp(`${hub.base.replace(/[.:/]/g, '\\$&')}/api/datasets/nobody/nothing/parquet: HTTP 404 Not Found \\(not found: check the name, revision and split\\): \\{"error":"Repository not found"\\}`),
    );

    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    expect(await fail('hf://a/b', `http://127.0.0.1:${closed}`)).to.match(new RegExp(`http://127\\.0\\.0\\.1:${closed}/api/datasets/a/b/parquet: connection to 127\\.0\\.0\\.1:${closed} refused \\(ECONNREFUSED\\)`));

    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'http://proxy.example:3128';
    try {
      const dns = await fail('hf://a/b', 'https://hub.invalid');
      expect(dns).to.match(/^Error: https:\/\/hub\.invalid\/api\/datasets\/a\/b\/parquet: DNS lookup of hub\.invalid failed \((ENOTFOUND|EAI_AGAIN)\)/);
      expect(dns).to.match(/HTTPS_PROXY is set \(http:\/\/proxy\.example:3128\) but prmkit connects directly/);
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
  });

  it('names a TLS failure (a self-signed certificate, as an intercepting proxy presents)', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-tls-'));
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    if (made.status !== 0) {
      console.log('    skipped: openssl is not available to make a self-signed certificate');
      this.skip();
    }
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const error = await getHubDataset(parseHubRef('hf://a/b'), { endpoint, to: dir, log: quiet }).then(() => '', (e: unknown) => String(e));
      expect(error).to.match(/\/api\/datasets\/a\/b\/parquet: TLS with 127\.0\.0\.1:\d+ failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)[^)]*\); a proxy or firewall that intercepts TLS needs its CA in NODE_EXTRA_CA_CERTS/);
    } finally {
      server.close();
    }
  });

  it('data get refuses an unknown name with the choices', async () => {
    let error: unknown;
    await runDataGet({ dataset: 'math-shepherd', to: tmpdir(), force: false }, quiet).catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/unknown dataset "math-shepherd": choose processbench, gsm8k, math500, or give hf:\/\/OWNER\/NAME\[@revision\]\[:split\]/);
  });
});
