import { request as httpRequest } from 'node:http';

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

/** POST a JSON body (a string is sent as is) and read the JSON answer. */
export async function post(url: string, body: unknown, opts: { token?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers };
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export async function get(url: string, opts: { token?: string; method?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(url, { method: opts.method ?? 'GET', headers });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/**
 * Streams a body in chunks without a Content-Length (chunked transfer), as a client that does
 * not announce its size; resolves with the status the server answered.
 */
export function postChunked(url: string, chunks: number, chunkBytes: number, token?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(chunkBytes, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < chunks) {
        sent++;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    req.write('{"problem": "');
    pump();
  });
}

/** A gate a test opens by hand: the server's beforeForward hook awaits it. */
export class Gate {
  private waiters: (() => void)[] = [];
  private opened = true;
  /** Forward passes that reached the gate. */
  arrived = 0;
  close(): void {
    this.opened = false;
  }
  open(): void {
    this.opened = true;
    for (const w of this.waiters.splice(0)) w();
  }
  pass = (): Promise<void> | void => {
    this.arrived++;
    if (this.opened) return;
    return new Promise((resolve) => this.waiters.push(resolve));
  };
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
