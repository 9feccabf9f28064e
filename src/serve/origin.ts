/**
 * What keeps a browser from using a reward server it can reach (one on loopback or on a LAN):
 *
 * - Content-Type must be application/json. A page can POST a form or a Blob body without a
 *   preflight only with no Content-Type or one of the "simple" types; JSON needs a CORS
 *   preflight, which this server never grants.
 * - The Host header must name the address the server is bound to (or a name given with
 *   --allowed-hosts). DNS rebinding points an attacker's name at 127.0.0.1: the browser then
 *   sends "Host: attacker.example:8000", which no bound address matches.
 */
import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import { HttpError } from './errors.js';

export function requireJsonContentType(req: IncomingMessage): void {
  const type = req.headers['content-type'];
  if (type === undefined || !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new HttpError(415, `Content-Type must be application/json, got ${type === undefined ? 'none' : `"${type}"`}`);
  }
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

function bracket(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** The host names (without port) a request to a server bound to `boundHost` may carry. */
export function boundHostNames(boundHost: string, allowedHosts: readonly string[] = []): Set<string> {
  const names = new Set<string>(allowedHosts.map((h) => h.toLowerCase()));
  const host = boundHost.replace(/^\[|\]$/g, '').toLowerCase();
  names.add(bracket(host));
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  const wildcard = host === '0.0.0.0' || host === '::';
  if (loopback || wildcard) for (const n of LOOPBACK_NAMES) names.add(n);
  if (wildcard) {
    // Bound to every interface: any of this machine's own addresses names it.
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(bracket(a.address.toLowerCase()));
  }
  return names;
}

export class HostCheck {
  private readonly names: Set<string>;
  private readonly any: boolean;

  constructor(
    boundHost: string,
    private readonly port: number,
    allowedHosts: readonly string[] = [],
  ) {
    this.any = allowedHosts.includes('*');
    this.names = boundHostNames(boundHost, allowedHosts);
  }

  check(req: IncomingMessage): void {
    if (this.any) return;
    const header = req.headers.host;
    if (!header) throw new HttpError(400, 'missing Host header');
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header.trim().toLowerCase());
    const port = m?.[2] === undefined ? 80 : Number(m[2]);
    if (!m || !this.names.has(m[1]) || port !== this.port) {
      throw new HttpError(421, `Host "${header}" is not this server's address (allowed: ${[...this.names].join(', ')} on port ${this.port}; add names with --allowed-hosts)`);
    }
  }
}
