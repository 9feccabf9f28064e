/**
 * Which native backends load in this process. Only @tensorflow/tfjs-node is tried: the GPU
 * package registers the same 'tensorflow' backend, so one process can test only one of them,
 * and no GPU is available here.
 */
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { fusedKernelsAvailability } from '../../src/backend/fused/fused-ops.js';

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

/**
 * In a mocha `before`: selects the native backend, or skips the suite with the reason (no native
 * backend here, or a binding without prmkit's fused kernels; wasm and cpu run the eager ops).
 */
export async function skipUnlessFusedKernels(ctx: Mocha.Context): Promise<void> {
  if ((await nativeBackendsHere()).length === 0) {
    console.warn('    skipped: the fused kernels run on the native backend only, which does not load here (wasm/cpu use the eager ops)');
    ctx.skip();
  }
  await selectBackend('tensorflow', { log: () => {} }); // an earlier suite may have left another one
  const avail = fusedKernelsAvailability();
  if (!avail.ok) {
    console.warn(`    skipped: ${avail.reason}`);
    ctx.skip();
  }
}
