/**
 * `--workers N` on one machine: N worker processes on loopback, each with its own TF_CONFIG
 * (as a TFJob or an Indexed Job would set it), their output prefixed by rank, one exit status.
 * For tests and for several GPUs in one machine; a real cluster sets TF_CONFIG itself.
 *
 * TensorFlow's gRPC server listens on every interface whatever address TF_CONFIG names, so by
 * default the workers run in a network namespace of their own with only loopback (fence.ts):
 * no other host can reach them. Where that namespace cannot be made the launch is refused,
 * unless the caller asks for `network: 'host'` (the CLI's --expose-workers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { FenceUnavailableError, startNetworkFence, type NetworkFence } from './fence.js';
import { TF_CONFIG_ENV, workerTfConfig } from './tf-config.js';
import { openInterfacesNote } from './exposure.js';

export interface LaunchOptions {
  workers: number;
  /** The program every worker runs (default: this Node binary) and its arguments. */
  command?: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** After the first worker fails, how long the others may take to stop by themselves before SIGTERM (default 30 s). */
  graceSeconds?: number;
  stdout?: Writable;
  stderr?: Writable;
  /** Launcher messages (default: stderr, prefixed "[launcher]"). */
  log?: (line: string) => void;
  /**
   * 'fenced' (default): the workers share a network namespace with only loopback; refused where
   * it cannot be made. 'host': the workers' servers listen on every interface of this machine.
   */
  network?: 'fenced' | 'host';
}

export interface WorkerExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from launch to exit. */
  ms: number;
}

export interface LaunchResult {
  /** 0 when every worker exited 0; else the exit code of the first worker to fail (1 if it was killed by a signal). */
  exitCode: number;
  workers: WorkerExit[];
  addresses: string[];
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so none repeats, then released). */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('freeLoopbackPorts: no TCP address');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => out.write(`${prefix}${line}\n`));
    lines.on('close', () => resolve());
  });
}

/**
 * One GPU per worker when CUDA_VISIBLE_DEVICES lists at least one per worker: worker r sees the
 * r-th. Otherwise the environment is left alone (CPU workers; fewer GPUs than workers share them).
 */
export function workerGpus(env: NodeJS.ProcessEnv, rank: number, workers: number): NodeJS.ProcessEnv {
  const visible = env.CUDA_VISIBLE_DEVICES?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!visible || visible.length < workers) return {};
  return { CUDA_VISIBLE_DEVICES: visible[rank] };
}

/** Starts the workers and resolves when all have exited. */
export async function launchLocalWorkers(opts: LaunchOptions): Promise<LaunchResult> {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error(`--workers must be a positive integer, got ${opts.workers}`);
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const log = opts.log ?? ((line: string) => stderr.write(`[launcher] ${line}\n`));
  const graceMs = (opts.graceSeconds ?? 30) * 1000;
  const ports = await freeLoopbackPorts(opts.workers);
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  let fence: NetworkFence | null = null;
  if ((opts.network ?? 'fenced') === 'fenced') {
    try {
      fence = await startNetworkFence();
    } catch (err) {
      if (!(err instanceof FenceUnavailableError)) throw err;
      throw new FenceUnavailableError(
        `--workers: cannot start the local workers in a network namespace of their own: ${err.message}. ` +
          "Without it their TensorFlow gRPC servers listen on every interface, unauthenticated: any host that reaches this machine could run code in them. " +
          'Pass --expose-workers to run them anyway (only on a machine no untrusted host can reach), or make the namespace possible (docs/reliability-and-security.md)',
      );
    }
    log(`${opts.workers} workers on ${addresses.join(', ')}, in a network namespace with only loopback (holder pid ${fence.pid})`);
  } else {
    log(`${opts.workers} workers on ${addresses.join(', ')}; ${openInterfacesNote(ports)}`);
  }
  const started = Date.now();

  const exits: WorkerExit[] = [];
  let firstFailure: WorkerExit | null = null;
  const children: ChildProcess[] = [];
  let graceTimer: NodeJS.Timeout | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const running = () => children.filter((c) => c.exitCode === null && c.signalCode === null);

  const forward = (signal: NodeJS.Signals) => () => {
    log(`${signal}: passing it to the workers`);
    for (const c of running()) c.kill(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const baseEnv = opts.env ?? process.env;
  const done = Array.from({ length: opts.workers }, (_, rank) => {
    const program = fence ? fence.wrap(opts.command ?? process.execPath, opts.args) : { command: opts.command ?? process.execPath, args: opts.args };
    const child = spawn(program.command, program.args, {
      env: { ...baseEnv, ...workerGpus(baseEnv, rank, opts.workers), [TF_CONFIG_ENV]: workerTfConfig(addresses, rank) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    log(`rank ${rank}: pid ${child.pid}`);
    const prefix = `[rank ${rank}] `;
    const streams = Promise.all([prefixLines(child.stdout!, prefix, stdout), prefixLines(child.stderr!, prefix, stderr)]);
    return new Promise<void>((resolve) => {
      child.on('error', (err) => log(`rank ${rank}: could not start: ${err.message}`));
      child.on('close', (code, signal) => {
        void streams.then(() => {
          const exit: WorkerExit = { rank, code, signal, ms: Date.now() - started };
          exits.push(exit);
          if ((code !== 0 || signal !== null) && firstFailure === null) {
            firstFailure = exit;
            log(`rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; the others get ${graceMs / 1000} s to stop`);
            graceTimer = setTimeout(() => {
              const left = running();
              if (left.length === 0) return;
              log(`stopping ${left.length} worker(s) still running (SIGTERM)`);
              for (const c of left) c.kill('SIGTERM');
              killTimer = setTimeout(() => running().forEach((c) => c.kill('SIGKILL')), 10_000);
            }, graceMs);
          }
          resolve();
        });
      });
    });
  });
  try {
    await Promise.all(done);
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    if (killTimer) clearTimeout(killTimer);
    fence?.close();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  exits.sort((a, b) => a.rank - b.rank);
  const failure = firstFailure as WorkerExit | null;
  const exitCode = failure === null ? 0 : failure.signal !== null || !failure.code ? 1 : failure.code;
  return { exitCode, workers: exits, addresses };
}

/**
 * The command line of this process again, without `--workers N`: what each worker runs.
 * Keeps Node's own flags (e.g. --import tsx) so a source checkout launches the same way.
 */
export function workerArgs(argv: readonly string[] = process.argv, execArgv: readonly string[] = process.execArgv): string[] {
  const rest: string[] = [];
  const user = argv.slice(2);
  for (let i = 0; i < user.length; i++) {
    const a = user[i];
    if (a === '--workers') {
      i++;
      continue;
    }
    if (a.startsWith('--workers=')) continue;
    rest.push(a);
  }
  return [...execArgv, argv[1], ...rest];
}
