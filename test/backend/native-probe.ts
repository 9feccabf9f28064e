/**
 * Which native backends load in this process. Only @tensorflow/tfjs-node is tried: the GPU
 * package registers the same 'tensorflow' backend, so one process can test only one of them,
 * and no GPU is available here.
 */
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';

let cached: Promise<ConcreteBackend[]> | null = null;

export function nativeBackendsHere(): Promise<ConcreteBackend[]> {
  cached ??= (async () => {
    try {
      await selectBackend('tensorflow', { log: () => {} });
      return ['tensorflow' as const];
    } catch (err) {
      console.warn(`    (native backend not tested: ${err instanceof Error ? err.message : String(err)})`);
      return [];
    }
  })();
  return cached;
}
