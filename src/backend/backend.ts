/**
 * The one place that chooses the TensorFlow.js backend (`--backend`).
 *
 * auto takes the first that loads: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node, wasm, cpu.
 * The native packages are optional: they are probed (installed? binding built? binding loads?)
 * BEFORE being imported, because importing one registers all of its kernels even when its
 * binding then fails to load, and the leftovers would clash with the other native package.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  registerCpuFastKernels,
  registerTrainingGradients,
  registerWasmTrainingKernels,
} from './wasm-kernels.js';
import { registerThreadedWasmFactory } from './wasm-threads.js';

import { BACKEND_NAMES, type BackendName, type ConcreteBackend } from './backend-names.js';
import { kernelInfo, type KernelInfo } from './fused/kernel-choice.js';

export { BACKEND_NAMES, type BackendName, type ConcreteBackend };
/** Order in which auto tries the backends. */
export const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendAttempt {
  name: string;
  ok: boolean;
  /** Why it did not load (one line); absent when ok. */
  reason?: string;
}

export interface BackendSelection {
  name: ConcreteBackend;
  /** The tfjs backend name that runs the kernels ('tensorflow' for both native packages). */
  tfBackend: string;
  attempts: BackendAttempt[];
}

export interface BackendInfo {
  name: ConcreteBackend | null;
  tfBackend: string;
  tfjsVersion: string;
  /** libtensorflow version for the native backends, else null. */
  tensorflowVersion: string | null;
  /** Native package version (@tensorflow/tfjs-node[-gpu]) when a native backend runs. */
  nativePackage: string | null;
  /** Threads the backend computes with (wasm: its XNNPACK pool; native: TF's default pool). */
  threads: number;
  /** wasm SIMD build in use (null for other backends). */
  simd: boolean | null;
  /** The native backend placed ops on a GPU (null for other backends). */
  gpu: boolean | null;
  /** Fused native kernels or eager ops (train.kernels), and why eager when fused was asked for. */
  kernels: KernelInfo;
  attempts: BackendAttempt[];
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: ConcreteBackend,
    readonly reason: string,
  ) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

export interface SelectBackendOptions {
  /** Where the choice and the reasons go (default: stderr). */
  log?: (line: string) => void;
}

const NATIVE_PACKAGES = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
} as const;
type NativeBackend = keyof typeof NATIVE_PACKAGES;

/** Environment variable naming the backend that 'auto' (the default) stands for, e.g. in CI. */
export const BACKEND_ENV = 'PRMKIT_BACKEND';
/**
 * Environment variable setting the wasm backend's thread count. The default, 1, runs tfjs's
 * single-threaded SIMD build. More threads start its threaded build (wasm-threads.ts): XNNPACK
 * then splits large matmuls, but every kernel pays a wake-up of the pool's workers, so small
 * models and busy machines run slower (a 1,000-step toy run: 8 s with 1 thread, 57 s with 2,
 * on a loaded 2-core machine); `npm run bench` measures both.
 */
export const WASM_THREADS_ENV = 'PRMKIT_WASM_THREADS';

/** XNNPACK's pool in tfjs-backend-wasm holds at most 8 threads. */
const WASM_MAX_THREADS = 8;

function wasmThreads(): number {
  const raw = process.env[WASM_THREADS_ENV]?.trim();
  if (!raw) return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > WASM_MAX_THREADS) {
    throw new Error(`${WASM_THREADS_ENV}=${raw}: expected an integer in [1, ${WASM_MAX_THREADS}]`);
  }
  return n;
}

/**
 * What a request for 'auto' means: the backend named by PRMKIT_BACKEND when it is set (so a
 * whole test suite or CI job can run on one backend), else 'auto' itself.
 */
export function defaultBackend(): BackendName {
  const raw = process.env[BACKEND_ENV]?.trim();
  if (!raw) return 'auto';
  if (!BACKEND_NAMES.includes(raw as BackendName)) {
    throw new Error(`${BACKEND_ENV}=${raw} is not a backend (choose one of ${BACKEND_NAMES.join(', ')})`);
  }
  return raw as BackendName;
}

const requireHere = createRequire(import.meta.url);

interface NativeBinding {
  TF_Version?: string;
  isUsingGpuDevice?: () => boolean;
}

/** State of this process: what was selected, and which native package (if any) is imported. */
let current: { requested: BackendName; selection: BackendSelection } | null = null;
let loadedNative: { backend: NativeBackend; version: string; binding: NativeBinding } | null = null;
let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm') | null = null;

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';
}

type Probe = { ok: true; bindingPath: string } | { ok: false; reason: string };

/**
 * Does the GPU package's binding see a GPU? Asked in a child process: the binding cannot be
 * unloaded again, and a GPU-less tfjs-node-gpu must not share this process with tfjs-node
 * (both bring a libtensorflow; same-named libraries would be mixed across versions).
 */
function probeGpuDevice(bindingPath: string): Probe {
  const script =
    `try { process.stdout.write(String(require(${JSON.stringify(bindingPath)}).isUsingGpuDevice())); }` +
    ` catch (e) { process.stderr.write(String(e && e.message || e)); process.exit(3); }`;
  const run = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  if (run.status !== 0) {
    return { ok: false, reason: `native binding failed to load: ${firstLine(run.stderr || run.error || 'no output')}` };
  }
  if (run.stdout.trim() !== 'true') return { ok: false, reason: 'the binding loads, but TensorFlow sees no GPU device' };
  return { ok: true, bindingPath };
}

/**
 * Installed? Binding built? Binding (and libtensorflow) loads (for the GPU package: and sees a
 * GPU)? Without importing the package.
 */
function probeNative(pkg: string, gpu: boolean): Probe {
  let pkgJson: string;
  try {
    pkgJson = requireHere.resolve(`${pkg}/package.json`);
  } catch {
    return { ok: false, reason: `${pkg} is not installed` };
  }
  const pkgRequire = createRequire(pkgJson);
  let bindingPath: string;
  try {
    const preGyp = pkgRequire('@mapbox/node-pre-gyp') as { find: (p: string) => string };
    bindingPath = preGyp.find(pkgJson);
  } catch (err) {
    return { ok: false, reason: `${pkg}: cannot locate its native binding (${firstLine(err)})` };
  }
  if (!existsSync(bindingPath)) {
    const rel = path.relative(path.dirname(pkgJson), bindingPath);
    const setup = gpu ? 'npm run setup-native -- --gpu' : 'npm run setup-native';
    return { ok: false, reason: `${pkg}: native binding not built (${rel} missing; run '${setup}')` };
  }
  if (gpu) {
    const probe = probeGpuDevice(bindingPath);
    return probe.ok ? probe : { ok: false, reason: `${pkg}: ${probe.reason}` };
  }
  try {
    pkgRequire(bindingPath);
  } catch (err) {
    return { ok: false, reason: `${pkg}: native binding failed to load: ${firstLine(err)}` };
  }
  return { ok: true, bindingPath };
}

async function loadNative(backend: NativeBackend): Promise<void> {
  const pkg = NATIVE_PACKAGES[backend];
  if (loadedNative) {
    if (loadedNative.backend === backend) {
      if (!(await tf.setBackend('tensorflow'))) throw new Error(`tf.setBackend('tensorflow') failed`);
      return;
    }
    // Both packages register the backend 'tensorflow'; one process can hold only one of them.
    throw new Error(`${NATIVE_PACKAGES[loadedNative.backend]} is already loaded in this process`);
  }
  // libtensorflow logs INFO lines (oneDNN, CPU features) at load; we log the backend ourselves.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  const probe = probeNative(pkg, backend === 'tensorflow-gpu');
  if (!probe.ok) throw new Error(probe.reason);
  let mod: { version?: Record<string, string> };
  try {
    mod = (await import(pkg)) as typeof mod;
  } catch (err) {
    throw new Error(`${pkg}: import failed: ${firstLine(err)}`);
  }
  if (!tf.findBackend('tensorflow')) {
    // Happens when the package resolved its own copy of @tensorflow/tfjs (version mismatch).
    throw new Error(`${pkg} registered its backend on another @tensorflow/tfjs copy than prmkit's`);
  }
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg}: tf.setBackend('tensorflow') failed`);
  const binding = ((tf.backend() as unknown as { binding?: NativeBinding }).binding ?? {}) as NativeBinding;
  loadedNative = { backend, version: mod.version?.['tfjs-node'] ?? 'unknown', binding };
}

async function loadWasm(log: (line: string) => void): Promise<void> {
  if (!wasmModule) {
    const mod = await import('@tensorflow/tfjs-backend-wasm');
    const threads = wasmThreads();
    // Must be set before the backend initialises.
    mod.setThreadsCount(threads);
    wasmModule = mod;
    if (threads > 1) {
      // tfjs never starts its threaded build in Node; wasm-threads.ts does (see there).
      const stockFactory = tf.findBackendFactory('wasm');
      try {
        const registered = await registerThreadedWasmFactory();
        if (registered && !(await tf.setBackend('wasm'))) throw new Error('it did not initialise');
      } catch (err) {
        log(`backend: the threaded wasm build cannot start (${firstLine(err)}); using the single-threaded one`);
        if (tf.findBackendFactory('wasm') !== stockFactory && stockFactory) {
          if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
          tf.registerBackend('wasm', stockFactory, 2);
        }
      }
    }
  }
  if (!(await tf.setBackend('wasm'))) {
    throw new Error('the wasm module failed to initialise (see the message above)');
  }
}

async function loadCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error(`tf.setBackend('cpu') failed`);
  // The cpu backend greets its first tensor with a banner telling Node users to install
  // tfjs-node; we already logged which backend runs and why the native ones did not.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}

async function tryLoad(name: ConcreteBackend, log: (line: string) => void): Promise<BackendAttempt> {
  try {
    if (name === 'tensorflow-gpu' || name === 'tensorflow') await loadNative(name);
    else if (name === 'wasm') await loadWasm(log);
    else await loadCpu();
    await tf.ready();
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, reason: firstLine(err) };
  }
}

/** Kernels and gradients the chosen backend needs to train; see wasm-kernels.ts. */
function prepareForTraining(name: ConcreteBackend): string[] {
  const added = registerTrainingGradients();
  if (name === 'wasm') added.push(...registerWasmTrainingKernels());
  if (name === 'cpu') added.push(...registerCpuFastKernels());
  return added;
}

function tfBackendOf(name: ConcreteBackend): string {
  return name === 'tensorflow-gpu' || name === 'tensorflow' ? 'tensorflow' : name;
}

function describe(name: ConcreteBackend): string {
  const info = backendInfo();
  const parts: string[] = [];
  if (info.tensorflowVersion) parts.push(`libtensorflow ${info.tensorflowVersion}`);
  if (name === 'tensorflow-gpu') parts.push(info.gpu ? 'GPU' : 'no GPU device in use');
  if (info.simd !== null) parts.push(info.simd ? 'SIMD' : 'no SIMD');
  parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
  return `${name} (${parts.join(', ')})`;
}

/** A load failure in a few words: the reason without its package prefix and parenthesised detail. */
function briefReason(reason: string | undefined): string {
  if (!reason) return 'unavailable';
  const withoutPackage = reason.replace(/^@[^:]+:\s*/, '');
  return withoutPackage.replace(/\s*\(.*$/s, '').trim() || 'unavailable';
}

/**
 * Selects and initialises a backend. `auto` stands for the backend named by PRMKIT_BACKEND when
 * that is set, else takes the first of AUTO_ORDER that loads; an explicit name that cannot load
 * throws BackendUnavailableError with the reason. Calling again with the same choice returns the
 * same selection without reloading anything.
 */
export async function selectBackend(
  requestedName: BackendName = 'auto',
  opts: SelectBackendOptions = {},
): Promise<BackendSelection> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!BACKEND_NAMES.includes(requestedName)) {
    throw new Error(`unknown backend '${String(requestedName)}' (choose one of ${BACKEND_NAMES.join(', ')})`);
  }
  const requested = requestedName === 'auto' ? defaultBackend() : requestedName;
  const viaEnv = requestedName === 'auto' && requested !== 'auto';
  if (current && current.requested === requested && tf.getBackend() === current.selection.tfBackend) {
    return current.selection;
  }
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const attempts: BackendAttempt[] = [];
  for (const name of candidates) {
    const attempt = await tryLoad(name, log);
    attempts.push(attempt);
    if (!attempt.ok) {
      if (requested !== 'auto') throw new BackendUnavailableError(name, attempt.reason ?? 'unknown');
      continue;
    }
    prepareForTraining(name);
    const selection: BackendSelection = { name, tfBackend: tfBackendOf(name), attempts };
    current = { requested, selection };
    // One line: the backend in use, and in brief what auto passed over (the full reasons are in the run manifest).
    const skipped = attempts.filter((a) => !a.ok).map((a) => `${a.name}: ${briefReason(a.reason)}`);
    const how = requested === 'auto' ? `auto${skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : ''}` : viaEnv ? BACKEND_ENV : '';
    log(`backend: using ${describe(name)}${how ? ` [${how}]` : ''}`);
    return selection;
  }
  // cpu is pure JS and always loads, so auto only gets here if tfjs itself is broken.
  throw new Error(`no backend could be loaded: ${attempts.map((a) => `${a.name}: ${a.reason}`).join('; ')}`);
}

/** The backend in use, for run manifests and logs. */
export function backendInfo(): BackendInfo {
  const tfBackend = tf.getBackend() ?? 'none';
  const name: ConcreteBackend | null =
    tfBackend === 'tensorflow' ? (loadedNative?.backend ?? 'tensorflow')
    : tfBackend === 'wasm' || tfBackend === 'cpu' ? tfBackend
    : null;
  const native = tfBackend === 'tensorflow' ? loadedNative : null;
  let threads = 1;
  if (tfBackend === 'wasm' && wasmModule) threads = wasmModule.getThreadsCount();
  // libtensorflow sizes its intra-op pool to the machine's cores by default.
  if (tfBackend === 'tensorflow') threads = availableParallelism();
  let simd: boolean | null = null;
  if (tfBackend === 'wasm') simd = Boolean(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'));
  let gpu: boolean | null = null;
  if (native) gpu = Boolean(native.binding.isUsingGpuDevice?.());
  return {
    name,
    tfBackend,
    tfjsVersion: tf.version.tfjs,
    tensorflowVersion: native?.binding.TF_Version ?? null,
    nativePackage: native ? `${NATIVE_PACKAGES[native.backend]}@${native.version}` : null,
    threads,
    simd,
    gpu,
    kernels: kernelInfo(),
    attempts: current?.selection.attempts ?? [],
  };
}
