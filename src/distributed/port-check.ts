/**
 * Whether this task's TensorFlow server can listen on its port, tried before TensorFlow does:
 * its own error is only "Could not start gRPC server". The server listens on every interface
 * ("[::]" and "0.0.0.0"), so that is where the port is tried.
 */
import { createServer } from 'node:net';

const CAUSES: Record<string, string> = {
  EADDRINUSE: 'the port is already in use by another process',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not available on this machine',
};

function tryListen(port: number, host: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** Throws an error naming the address and the cause when the port cannot be bound. */
export async function checkPortBindable(address: string, port: number): Promise<void> {
  for (const host of ['::', '0.0.0.0']) {
    const err = await tryListen(port, host);
    // No IPv6 on this machine: the IPv4 try decides.
    if (err && host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) continue;
    if (err) throw new Error(`cannot start this worker's TensorFlow server at ${address}: port ${port}: ${CAUSES[err.code ?? ''] ?? err.message} (${err.code})`);
    return;
  }
}
