import { workerData, type MessagePort } from 'node:worker_threads';
import { casEquivalent, type CasRequest } from './cas.js';

/**
 * Worker side of bounded-cas.ts: answers each request on the transferred port, then flips the
 * shared flag so the blocked caller wakes up. Index 0 of the flag: request done; index 1: ready.
 */
interface WorkerInput {
  port: MessagePort;
  flag: Int32Array;
}

const { port, flag } = workerData as WorkerInput;

port.on('message', (msg: { id: number; req: CasRequest }) => {
  let reply: { id: number; equal: boolean; error?: string };
  try {
    reply = { id: msg.id, equal: casEquivalent(msg.req) };
  } catch (err) {
    reply = { id: msg.id, equal: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});

// Warm the engine up before announcing readiness, so the first deadline is not eaten by start-up.
casEquivalent({ a: '\\frac{x}{2}', b: '0.5x', relTol: 1e-4, mode: 'equal' });
Atomics.store(flag, 1, 1);
Atomics.notify(flag, 1);
