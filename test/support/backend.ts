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
