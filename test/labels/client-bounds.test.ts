import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenAIClient } from '../../src/labels/client.js';

/**
 * What one request to a model server may cost (label and search share the client): a reply that
 * starts and never ends is cut at the attempt timeout, a request never outlives its total
 * deadline whatever the retries, and a reply past the byte cap is cut off and not retried.
 */
type Behaviour = 'trickle' | 'silent' | 'huge';

async function misbehavingServer(behaviour: Behaviour): Promise<{ url: string; close: () => Promise<void>; requests: () => number }> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    req.resume();
    if (behaviour === 'silent') return; // never answers
    if (behaviour === 'trickle') {
      // A 200 whose body never ends: the headers and one byte a while.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices": [{"index": 0, "text": "');
      const timer = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(timer));
      return;
    }
    // A completion of 3 MB, streamed without Content-Length.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"choices": [{"index": 0, "text": "');
    for (let i = 0; i < 3; i++) res.write('y'.repeat(1 << 20));
    res.end('"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const body = { model: 'm', prompt: 'p', n: 1, max_tokens: 10 };

async function failure(client: OpenAIClient): Promise<{ error: Error; ms: number }> {
  const t0 = Date.now();
  const error = await client.completions(body).then(
    () => new Error('no error'),
    (e: Error) => e,
  );
  return { error, ms: Date.now() - t0 };
}

describe('client bounds: timeout of a reply that never ends, total deadline, reply byte cap', function () {
  this.timeout(20_000);

  it('a reply that starts and never ends is cut at the attempt timeout', async () => {
    const s = await misbehavingServer('trickle');
    try {
      const { error, ms } = await failure(new OpenAIClient({ endpoints: [s.url], timeoutMs: 300, maxRetries: 0 }));
      expect(error.message).to.match(/no reply within 300 ms/);
      expect(ms).to.be.below(2_000);
    } finally {
      await s.close();
    }
  });

  it('a request never outlives its deadline, however many retries are allowed', async () => {
    const s = await misbehavingServer('silent');
    try {
      const { error, ms } = await failure(new OpenAIClient({ endpoints: [s.url], timeoutMs: 200, maxRetries: 1000, backoffMs: 50, maxBackoffMs: 50, deadlineMs: 1000 }));
      expect(error.message).to.match(/deadline of 1000 ms/);
      expect(ms).to.be.within(800, 2_500);
    } finally {
      await s.close();
    }
  });

  it('a reply longer than maxReplyBytes is cut off, named, and not retried', async () => {
    const s = await misbehavingServer('huge');
    try {
      const { error } = await failure(new OpenAIClient({ endpoints: [s.url], maxReplyBytes: 1 << 20, maxRetries: 5, backoffMs: 1 }));
      expect(error.message).to.match(/reply is longer than 1048576 bytes/);
      expect(s.requests()).to.equal(1);
    } finally {
      await s.close();
    }
  });
});
