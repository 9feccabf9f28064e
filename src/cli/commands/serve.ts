import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import type { BackendName } from '../../model/backend.js';
import { DEFAULT_BATCHING, DEFAULT_LIMITS } from '../../serve/limits.js';

interface ServeArgs {
  model: string;
  port: number;
  host: string;
  token?: string;
  backend: string;
  'max-batch-tokens': number;
  'max-wait-ms': number;
  'max-batch-requests'?: number;
  'max-queue': number;
  'max-body-bytes': number;
  'max-steps': number;
  'max-tokens': number;
}

// TensorFlow.js is imported only when the command runs (model/backend.ts loads it), so `prmkit --help` stays quick.
const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function checkInt(value: number, flag: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${value}`);
  return value;
}

/**
 * `prmkit serve`: runs until SIGTERM or SIGINT, then stops accepting, answers every request
 * already received, and exits 0.
 */
export async function runServe(args: ServeArgs): Promise<void> {
  if (!(BACKEND_NAMES as readonly string[]).includes(args.backend)) {
    throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join('|')}, got "${args.backend}"`);
  }
  checkInt(args.port, '--port', 0);
  if (args.port > 65535) throw new UsageError(`--port must be at most 65535, got ${args.port}`);
  // The token may come from the environment, so it never shows in `ps`.
  const token = args.token ?? process.env.PRMKIT_SERVE_TOKEN;
  if (token !== undefined && token.length === 0) throw new UsageError('--token must not be empty');
  const options = {
    maxBatchTokens: checkInt(args['max-batch-tokens'], '--max-batch-tokens', 1),
    maxWaitMs: checkInt(args['max-wait-ms'], '--max-wait-ms', 0),
    maxBatchRequests: args['max-batch-requests'] === undefined ? undefined : checkInt(args['max-batch-requests'], '--max-batch-requests', 1),
    maxQueue: checkInt(args['max-queue'], '--max-queue', 1),
    maxBodyBytes: checkInt(args['max-body-bytes'], '--max-body-bytes', 1),
    maxSteps: checkInt(args['max-steps'], '--max-steps', 1),
    maxTokens: checkInt(args['max-tokens'], '--max-tokens', 1),
  };
  if (!LOOPBACK.has(args.host) && token === undefined) {
    console.error(`prmkit serve: warning: listening on ${args.host} without --token: anyone who can reach it can use the model`);
  }

  const { startRewardServer } = await import('../../serve/server.js');
  const server = await startRewardServer({ model: args.model, port: args.port, host: args.host, token, backend: args.backend as BackendName, ...options });
  console.error(`prmkit serve: listening on ${server.url} (POST /v1/score, GET /health)`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      const s = server.stats();
      console.error(`prmkit serve: ${signal}: draining ${s.depth} queued request${s.depth === 1 ? '' : 's'}`);
      server.close().then(resolve, (e: unknown) => {
        console.error(`prmkit serve: error while closing: ${e instanceof Error ? e.message : String(e)}`);
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  const s = server.stats();
  const answered = Object.values(s.responses).reduce((a, b) => a + b, 0);
  console.error(`prmkit serve: stopped after ${answered} responses in ${s.batches} forward passes`);
  // Backend thread pools may keep the event loop alive; the drain is complete, so leave.
  process.exit(0);
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve step scores over HTTP (POST /v1/score), batching requests across clients',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'PRM checkpoint directory (fixed for the life of the server)' })
      .option('port', { type: 'number', default: 8000, describe: 'TCP port (0: any free port, printed at start)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
      .option('token', { type: 'string', describe: 'require "Authorization: Bearer <token>" (or set PRMKIT_SERVE_TOKEN)' })
      .option('backend', { type: 'string', default: 'auto', describe: BACKEND_NAMES.join('|') })
      .option('max-batch-tokens', { type: 'number', default: DEFAULT_BATCHING.maxBatchTokens, describe: 'padded tokens per forward pass' })
      .option('max-wait-ms', { type: 'number', default: DEFAULT_BATCHING.maxWaitMs, describe: 'longest wait for other requests to share a forward pass' })
      .option('max-batch-requests', { type: 'number', describe: 'requests per forward pass (default unbounded; 1 turns batching off)' })
      .option('max-queue', { type: 'number', default: DEFAULT_LIMITS.maxQueue, describe: 'requests waiting at most; beyond: 503 + Retry-After' })
      .option('max-body-bytes', { type: 'number', default: DEFAULT_LIMITS.maxBodyBytes, describe: 'request body size limit (413)' })
      .option('max-steps', { type: 'number', default: DEFAULT_LIMITS.maxSteps, describe: 'steps per request limit (413)' })
      .option('max-tokens', { type: 'number', default: DEFAULT_LIMITS.maxTokens, describe: 'tokens per request limit (413)' })
      .example('$0 serve --model checkpoints/prm --port 8000 --token "$SECRET"', '')
      .example(`curl -s localhost:8000/v1/score -H 'Content-Type: application/json' -d '{"problem":"1+1?","steps":["1+1=2."]}'`, '') as unknown as Argv<ServeArgs>,
  handler: async (args) => {
    await runServe(args);
  },
};
