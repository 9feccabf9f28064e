/**
 * The multi-threaded wasm build of tfjs-backend-wasm, started in Node.
 *
 * tfjs 4.22 never uses its threaded-SIMD binary in Node: the WASM_HAS_MULTITHREAD_SUPPORT flag
 * is hard-wired to false there (tfjs issue 3830), and forcing it fails because tfjs hands
 * Emscripten its pthread worker as a blob: URL, which Node's worker_threads cannot start. The
 * Emscripten code itself supports Node workers given a file path. So this module does what
 * tfjs's own init() does, with file paths instead of blobs: it writes the worker script (which
 * tfjs ships only as a string) to a file, loads the threaded factory with require (its
 * __filename is then what each worker imports), and builds the stock BackendWasm on the
 * resulting module. Every wasm kernel (tfjs's and prmkit's) runs unchanged; XNNPACK's matmuls
 * then split their work over `threads` threads.
 *
 * Nothing here is a kernel: if any step fails, the caller falls back to the single-threaded
 * backend tfjs registers itself.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';

const requireHere = createRequire(import.meta.url);
// The CommonJS view of the module: its exports object is the one Emscripten's require sees.
const workerThreads = requireHere('node:worker_threads') as typeof import('node:worker_threads');

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...args: unknown[]) => unknown;
  tfjs?: Record<string, unknown>;
  PThread?: { runningWorkers: { unref?: () => void }[]; unusedWorkers: { unref?: () => void }[] };
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

function wasmOutDir(): string {
  const pkg = requireHere.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'wasm-out');
}

/** The worker script as a file (content-addressed, so versions never mix). */
function workerScriptFile(): string {
  const { wasmWorkerContents } = requireHere(path.join(wasmOutDir(), 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // The script is shipped inside a template literal, which turned the two-character escapes
  // "\n" of its string literals into real newlines; tfjs undoes that the same way.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(tmpdir(), 'prmkit-wasm');
  const file = path.join(dir, `tfjs-backend-wasm-threaded-simd.worker.${digest}.cjs`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, source);
    renameSync(partial, file);
  }
  return file;
}

/** The same cwraps tfjs's init() attaches as module.tfjs (BackendWasm calls them). */
function attachTfjsApi(module: EmscriptenModule): void {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
}

/**
 * Replaces the registered 'wasm' backend factory by one that starts the threaded-SIMD build.
 * Call before the wasm backend is first initialised, after setThreadsCount. Returns false
 * (changing nothing) when this Node cannot run it (no SIMD, no SharedArrayBuffer).
 */
export async function registerThreadedWasmFactory(): Promise<boolean> {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return false;
  const wasmPkg = await import('@tensorflow/tfjs-backend-wasm');
  const outDir = wasmOutDir();
  const factory = requireHere(path.join(outDir, 'tfjs-backend-wasm-threaded-simd.js')) as Factory;
  const workerFile = workerScriptFile();
  const binary = path.join(outDir, 'tfjs-backend-wasm-threaded-simd.wasm');
  if (!existsSync(binary)) return false;
  const create = async (): Promise<tf.KernelBackend> => {
    // The C++ side caps its pool at emscripten_num_logical_cores() / 2 (it assumes two
    // hyper-threads per core), read once while the module starts; in Node that number is
    // os.cpus().length, so a 2-core machine would get one thread. It is doubled for the start.
    const realCpus = os.cpus;
    const logical = realCpus.call(os);
    os.cpus = () => [...logical, ...logical];
    // Emscripten starts its workers with `new (require('worker_threads').Worker)(file)`, which
    // inherits this process's execArgv (e.g. `--input-type=module -e ...`, or a loader) that a
    // plain CommonJS worker file must not get. The class is swapped while the module starts;
    // Emscripten keeps the one it saw for workers it adds later.
    const RealWorker = workerThreads.Worker;
    class PoolWorker extends RealWorker {
      constructor(file: string | URL, options: WorkerOptions = {}) {
        super(file, { ...options, execArgv: [] });
      }
    }
    (workerThreads as { Worker: typeof RealWorker }).Worker = PoolWorker;
    let module: EmscriptenModule;
    try {
      module = await factory({
        locateFile: (file: string) => (file.endsWith('.worker.js') ? workerFile : file.endsWith('.wasm') ? binary : path.join(outDir, file)),
      });
    } finally {
      os.cpus = realCpus;
      (workerThreads as { Worker: typeof RealWorker }).Worker = RealWorker;
    }
    attachTfjsApi(module);
    const backend = new wasmPkg.BackendWasm(module as unknown as ConstructorParameters<typeof wasmPkg.BackendWasm>[0]);
    // The pool's threads live as long as the process; unlike a browser tab, a Node process
    // would never exit while they are referenced.
    const threads = module.PThread;
    if (threads) for (const worker of [...threads.runningWorkers, ...threads.unusedWorkers]) worker.unref?.();
    return backend;
  };
  // Same priority as tfjs's own registration (2); the kernels stay registered under 'wasm'.
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  tf.registerBackend('wasm', create, 2);
  return true;
}
