import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { checkPortBindable } from '../../src/distributed/port-check.js';

/** A worker's port is tried before TensorFlow's server takes it, so the error names the address and the cause. */
describe("a worker's TensorFlow server port", () => {
  let held: Server;
  let port: number;
  before(async () => {
    held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', () => resolve()));
    port = (held.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => held.close(() => resolve())));

  it('in use (even on loopback only): the error names the address and says the port is taken', async () => {
    const err = await checkPortBindable(`node7:${port}`, port).then(() => null, (e: Error) => e);
    expect(err?.message).to.match(new RegExp(`TensorFlow server at node7:${port}: port ${port}: the port is already in use .*EADDRINUSE`));
  });

  it('free: no error', async () => {
    await new Promise<void>((resolve) => held.close(() => resolve()));
    await checkPortBindable(`node7:${port}`, port);
    held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', () => resolve()));
  });
});
