import type { BackendName } from '../../src/backend/backend.js';
import { BACKEND_ENV } from '../../src/backend/backend.js';

/**
 * The backend a test that runs models should use when it does not test one backend in
 * particular: 'cpu' (fast to start, deterministic), unless PRMKIT_BACKEND names another, which
 * is how CI runs the suite a second time on the native backend (selectBackend('auto') then
 * resolves to it).
 */
export function testBackend(): BackendName {
  return process.env[BACKEND_ENV]?.trim() ? 'auto' : 'cpu';
}

/**
 * Selects `backend` for a suite (call in before()); the native tensorflow backend may be absent
 * on a machine without it built, and then the suite is skipped with that reason. Other backends
 * must load.
 */
export async function selectBackendOrSkip(ctx: Mocha.Context, backend: BackendName): Promise<void> {
  const { selectBackend } = await import('../../src/backend/backend.js');
  try {
    await selectBackend(backend, { log: () => {} });
  } catch (err) {
    if (backend !== 'tensorflow') throw err;
    console.warn(`      skipped: the native tensorflow backend does not load here (${(err as Error).message})`);
    ctx.skip();
  }
}
