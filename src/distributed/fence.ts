/**
 * A network fence for the local `--workers` launcher. TensorFlow's gRPC server (libtensorflow's
 * GrpcServer) always listens on every interface, without authentication: anyone who reaches its
 * port can run graphs in the worker. ServerDef has no bind address, so the fence is a network
 * namespace: one holder process is started with `unshare --user --map-root-user --net` (a new
 * user namespace makes this possible without root), brings up the namespace's loopback (its only
 * interface), and every worker joins it with `nsenter`. The workers reach each other on
 * 127.0.0.1; no other host (nor this host's own external address) reaches them.
 *
 * The price: inside the namespace there is no network but loopback. Stages that fetch over the
 * network (a Hub download, a remote labelling endpoint) must run before (docs/reliability-and-security.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export class FenceUnavailableError extends Error {
  override name = 'FenceUnavailableError';
}

export interface NetworkFence {
  /** Pid of the process that holds the namespace open. */
  pid: number;
  /** The command and arguments that run `command args` inside the namespace. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Ends the holder (the namespace goes when its last process does). */
  close(): void;
}

/** The holder: enter the namespaces, bring loopback up, say so, then wait to be killed. */
const HOLDER_SCRIPT = 'ip link set lo up && echo fenced && exec sleep 2147483647';

function missingTool(): string | null {
  for (const tool of ['unshare', 'nsenter', 'ip']) {
    const found = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    if (found.status !== 0) return tool;
  }
  return null;
}

/**
 * Starts the holder of a fresh network namespace with only loopback, or throws
 * FenceUnavailableError saying why (not Linux, a tool missing, user namespaces disabled).
 */
export async function startNetworkFence(timeoutMs = 10_000): Promise<NetworkFence> {
  if (process.platform !== 'linux') throw new FenceUnavailableError(`network namespaces exist on Linux only (this is ${process.platform})`);
  const missing = missingTool();
  if (missing) throw new FenceUnavailableError(`the '${missing}' command is not installed (util-linux and iproute2 provide unshare, nsenter and ip)`);
  const holder: ChildProcess = spawn('unshare', ['--user', '--map-root-user', '--net', '--', 'sh', '-c', HOLDER_SCRIPT], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  holder.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      holder.kill('SIGKILL');
      reject(new FenceUnavailableError(why));
    };
    const timer = setTimeout(() => fail(`the namespace holder did not start within ${timeoutMs} ms`), timeoutMs);
    holder.on('error', (err) => fail(`could not run unshare: ${err.message}`));
    holder.on('exit', (code, signal) => fail(`unshare --user --map-root-user --net failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    holder.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('fenced')) {
        clearTimeout(timer);
        holder.removeAllListeners('exit');
        resolve();
      }
    });
  });
  const pid = holder.pid as number;
  return {
    pid,
    wrap: (command, args) => ({
      command: 'nsenter',
      args: ['--target', String(pid), '--user', '--net', '--preserve-credentials', '--', command, ...args],
    }),
    close: () => {
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    },
  };
}
