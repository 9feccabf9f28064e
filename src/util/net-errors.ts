/**
 * What went wrong with a request, in words a user can act on. Node's fetch rejects with
 * "fetch failed" and hides the reason in `cause` (a DNS, TCP or TLS error code); this names the
 * cause and the URL. Node's fetch does not use HTTP(S)_PROXY, so when one is set the message says
 * so: behind a proxy, direct connections fail with DNS or connect errors.
 */

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);
const REFUSED = new Set(['ECONNREFUSED']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const UNREACHABLE = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN']);

function errorCode(err: unknown): { code?: string; message: string } {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  // fetch: TypeError("fetch failed") with the socket's error as cause (sometimes nested once more).
  for (let depth = 0; depth < 3 && e && e.cause !== undefined && typeof e.code !== 'string'; depth++) e = e.cause as typeof e;
  return { code: typeof e?.code === 'string' ? e.code : undefined, message: typeof e?.message === 'string' ? e.message : String(err) };
}

function proxyNote(url: string): string {
  const https = url.startsWith('https:');
  const name = https ? ['HTTPS_PROXY', 'https_proxy'] : ['HTTP_PROXY', 'http_proxy'];
  const set = name.find((n) => process.env[n]);
  return set ? `; ${set} is set (${process.env[set]}) but prmkit connects directly: allow direct access to the host or run where it is reachable` : '';
}

/** One line: the URL, what failed (DNS, connection, TLS, timeout), the code, and a proxy hint. */
export function describeFetchError(url: string, err: unknown): string {
  const { code, message } = errorCode(err);
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // not a URL: name it as given
  }
  let what: string;
  if (code && DNS.has(code)) what = `DNS lookup of ${host} failed (${code}): no network, or the name does not resolve here`;
  else if (code && REFUSED.has(code)) what = `connection to ${host} refused (${code}): nothing listens there`;
  else if (code && RESET.has(code)) what = `connection to ${host} was reset (${code})`;
  else if (code && TIMEOUT.has(code)) what = `connection to ${host} timed out (${code})`;
  else if (code && UNREACHABLE.has(code)) what = `network unreachable for ${host} (${code})`;
  else if (code && (/^ERR_TLS|^ERR_SSL|CERT|^UNABLE_TO_|SELF_SIGNED/.test(code))) what = `TLS with ${host} failed (${code}: ${message}); a proxy or firewall that intercepts TLS needs its CA in NODE_EXTRA_CA_CERTS`;
  else what = code ? `${message} (${code})` : message;
  return `${url}: ${what}${proxyNote(url)}`;
}

/** An HTTP answer that is not 2xx, with the URL, status and the start of its body. */
export function describeHttpStatus(url: string, status: number, statusText: string, body: string): string {
  const hint = status === 401 || status === 403 ? ' (a private or gated resource needs a token: HF_TOKEN)' : status === 404 ? ' (not found: check the name, revision and split)' : status === 429 ? ' (rate limited: retry later)' : '';
  const text = body.trim().slice(0, 300);
  return `${url}: HTTP ${status} ${statusText}${hint}${text ? `: ${text}` : ''}`;
}
