/**
 * For the distributed tests: prmkit's collective entry points of the native binding, or the
 * reason they are not there (the tests then skip with that reason).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { CollectiveBinding } from '../../src/distributed/native.js';

const requireHere = createRequire(import.meta.url);

/**
 * Loads the tfjs-node binding (.node file) by itself: that gives TensorFlow's C API without
 * registering the tfjs 'tensorflow' backend in the test process.
 */
export function loadCollectiveBinding(): { binding: CollectiveBinding } | { skip: string } {
  let pkgJson: string;
  try {
    pkgJson = requireHere.resolve('@tensorflow/tfjs-node/package.json');
  } catch {
    return { skip: '@tensorflow/tfjs-node is not installed' };
  }
  const pkgRequire = createRequire(pkgJson);
  try {
    const preGyp = pkgRequire('@mapbox/node-pre-gyp') as { find: (p: string) => string };
    const path = preGyp.find(pkgJson);
    if (!existsSync(path)) return { skip: "the native binding is not built (run 'npm run setup-native')" };
    // libtensorflow logs INFO lines at load (as src/backend/backend.ts, keep warnings only).
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
    const binding = pkgRequire(path) as Partial<CollectiveBinding>;
    if (typeof binding.enableCollectiveOps !== 'function') {
      return { skip: "the native binding lacks prmkit's collective ops (rebuild with 'npm run setup-native')" };
    }
    return { binding: binding as CollectiveBinding };
  } catch (err) {
    return { skip: `the native binding does not load: ${(err as Error).message.split('\n')[0]}` };
  }
}

/**
 * Collective tests need the native backend in the workers: they skip when PRMKIT_BACKEND names
 * another backend (the wasm/cpu CI pass) or when the binding is missing.
 */
export function collectiveSkipReason(): string | null {
  const requested = process.env.PRMKIT_BACKEND?.trim();
  if (requested && requested !== 'tensorflow' && requested !== 'tensorflow-gpu' && requested !== 'auto') {
    return `collective ops need the native backend (PRMKIT_BACKEND=${requested}); TensorFlow's collectives live in libtensorflow`;
  }
  const loaded = loadCollectiveBinding();
  return 'skip' in loaded ? loaded.skip : null;
}
