import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * ESM source, for `new Worker(source, { eval: true })`, that imports a worker module given
 * relative to the caller: its .js twin when running compiled, the .ts file when running from
 * source (after registering tsx in the thread, since Node 20 workers do not inherit the loader).
 * A failed import is posted as `{ startError }` on the worker's parent port, so the caller hears
 * of it instead of waiting for a worker that never reports ready.
 */
export function workerModuleSource(callerUrl: string, moduleStem: string): string {
  const fromSource = callerUrl.endsWith('.ts');
  const workerUrl = new URL(`${moduleStem}${fromSource ? '.ts' : '.js'}`, callerUrl).href;
  let register = '';
  if (fromSource) {
    // import.meta.resolve is missing when tsx loads this file as CommonJS; require.resolve then
    // finds the CommonJS build of the API, whose ESM twin sits next to it.
    const tsxApi =
      typeof import.meta.resolve === 'function'
        ? import.meta.resolve('tsx/esm/api')
        : pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    register = `const { register } = await import(${JSON.stringify(tsxApi)}); register();`;
  }
  return [
    `import { parentPort } from 'node:worker_threads';`,
    `try { ${register} await import(${JSON.stringify(workerUrl)}); }`,
    `catch (err) { parentPort.postMessage({ startError: String((err && err.stack) || err) }); }`,
  ].join('\n');
}
