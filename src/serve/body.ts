import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/**
 * Reads a request body of at most maxBytes. A Content-Length above the limit is refused before
 * any byte is read, and a body streamed without one (chunked) is refused as soon as it crosses
 * the limit, so memory per request stays bounded by maxBytes.
 */
export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(tooLarge(maxBytes, `Content-Length ${declared}`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A body that does not arrive in time: 408, and the connection closes after the answer.
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          cleanup();
          chunks.length = 0;
          reject(new HttpError(408, `request body not received within ${timeoutMs} ms (${size} bytes arrived)`));
        }, timeoutMs)
      : undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        chunks.length = 0;
        // Keep draining (and discarding) what the client still sends, so it can read the 413
        // instead of seeing its upload reset; the connection is closed after the response.
        req.resume();
        reject(tooLarge(maxBytes, `more than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    // The client went away mid-body: nobody will read the answer, and it is not a server fault.
    const onError = (err: Error): void => {
      cleanup();
      reject(new HttpError(400, `request body not received: ${err.message}`));
    };
    const onAborted = (): void => {
      cleanup();
      reject(new HttpError(400, 'the client aborted the request'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/**
 * Reads and drops the rest of a request body that is being refused, when it is small enough
 * (declared within maxBytes, or chunked and ending within it) and arrives within waitMs.
 * Answering and closing a connection whose request bytes were never read makes the kernel reset
 * it, and the client then loses the answer; a drained body lets the answer through. Resolves
 * with whether the body was read to its end.
 */
export function discardBody(req: IncomingMessage, maxBytes: number, waitMs: number): Promise<boolean> {
  const declared = req.headers['content-length'];
  if (req.complete) return Promise.resolve(true);
  if (declared !== undefined && !(Number(declared) <= maxBytes)) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let size = 0;
    const finish = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', finish);
      req.off('error', finish);
      req.off('aborted', finish);
      resolve(req.complete);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) finish();
    };
    const timer = setTimeout(finish, waitMs);
    req.on('data', onData);
    req.on('end', finish);
    req.on('error', finish);
    req.on('aborted', finish);
    req.resume();
  });
}

function tooLarge(maxBytes: number, what: string): HttpError {
  return new HttpError(413, `request body too large: ${what} exceeds the limit of ${maxBytes} bytes`);
}

/** Parses a body as UTF-8 JSON; bad bytes or syntax give 422 with the parser's reason. */
export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new HttpError(422, 'malformed request: the body is not valid UTF-8');
  }
  if (text.trim() === '') throw new HttpError(422, 'malformed request: empty body (expected a JSON object)');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(422, `malformed JSON: ${(e as Error).message}`);
  }
}

/**
 * Reads request bodies before they may queue, within the per-request deadline, at most
 * maxBodiesPerAddress at once per client address and maxBodiesReading at once in all: a client
 * that opens many connections and trickles bytes into them is refused beyond its share instead
 * of holding queue slots that valid clients need.
 */
export class BodyReaders {
  private readonly perAddress = new Map<string, number>();
  private reading = 0;

  constructor(private readonly limits: { maxBodyBytes: number; bodyTimeoutMs: number; maxBodiesPerAddress: number; maxBodiesReading: number }) {}

  async read(req: IncomingMessage): Promise<Buffer> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const mine = this.perAddress.get(address) ?? 0;
    if (mine >= this.limits.maxBodiesPerAddress) {
      throw new HttpError(429, `too many request bodies still arriving from ${address} (${mine}; the limit is ${this.limits.maxBodiesPerAddress})`, { 'Retry-After': '1' });
    }
    if (this.reading >= this.limits.maxBodiesReading) {
      throw new HttpError(503, `too many request bodies still arriving (${this.reading}); retry later`, { 'Retry-After': '1' });
    }
    this.perAddress.set(address, mine + 1);
    this.reading++;
    try {
      return await readBody(req, this.limits.maxBodyBytes, this.limits.bodyTimeoutMs);
    } finally {
      this.reading--;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.perAddress.delete(address);
      else this.perAddress.set(address, left);
    }
  }

  /** Bodies being received now (for /health and tests). */
  get active(): number {
    return this.reading;
  }
}
