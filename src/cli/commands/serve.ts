import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { AGGREGATORS, isAggregator } from '../../eval/aggregate.js';
import { backendOption, integerAtLeast, modelOption, parseBackend } from '../options.js';
import { DEFAULT_BATCHING, DEFAULT_LIMITS } from '../../serve/limits.js';
import { DEFAULT_ENCODE_POOL } from '../../serve/encode-pool.js';
import { addSplitOptions, splitOptionsOf, type SplitArgs } from '../split-options.js';

interface ServeArgs extends Partial<SplitArgs> {
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
  'encode-workers': number;
  aggregate: string;
  'allowed-hosts'?: string;
  'body-timeout-ms': number;
  'max-bodies-per-address': number;
}

// TensorFlow.js is imported only when the command runs (backend/backend.ts loads it), so `prmkit --help` stays quick.
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * `prmkit serve`: runs until SIGTERM or SIGINT, then stops accepting, answers every request
 * already received, and exits 0.
 */
export async function runServe(args: ServeArgs): Promise<void> {
  const backend = parseBackend(args.backend);
  integerAtLeast(args.port, '--port', 0);
  if (args.port > 65535) throw new UsageError(`--port must be at most 65535, got ${args.port}`);
  // The token may come from the environment, so it never shows in `ps`.
  const token = args.token ?? process.env.PRMKIT_SERVE_TOKEN;
  if (token !== undefined && token.length === 0) throw new UsageError('--token must not be empty');
  const options = {
    maxBatchTokens: integerAtLeast(args['max-batch-tokens'], '--max-batch-tokens', 1),
    maxWaitMs: integerAtLeast(args['max-wait-ms'], '--max-wait-ms', 0),
    maxBatchRequests: args['max-batch-requests'] === undefined ? undefined : integerAtLeast(args['max-batch-requests'], '--max-batch-requests', 1),
    maxQueue: integerAtLeast(args['max-queue'], '--max-queue', 1),
    maxBodyBytes: integerAtLeast(args['max-body-bytes'], '--max-body-bytes', 1),
    maxSteps: integerAtLeast(args['max-steps'], '--max-steps', 1),
    maxTokens: integerAtLeast(args['max-tokens'], '--max-tokens', 1),
    encodeWorkers: integerAtLeast(args['encode-workers'] ?? DEFAULT_ENCODE_POOL.size, '--encode-workers', 0),
    bodyTimeoutMs: integerAtLeast(args['body-timeout-ms'], '--body-timeout-ms', 1),
    maxBodiesPerAddress: integerAtLeast(args['max-bodies-per-address'], '--max-bodies-per-address', 1),
    allowedHosts: args['allowed-hosts']?.split(',').map((h) => h.trim()).filter((h) => h !== ''),
  };
  if (!LOOPBACK.has(args.host) && token === undefined) {
    console.error(`prmkit serve: warning: listening on ${args.host} without --token: anyone who can reach it can use the model`);
  }

  if (!isAggregator(args.aggregate)) throw new UsageError(`--aggregate must be one of ${AGGREGATORS.join(', ')}, got "${args.aggregate}"`);
  const aggregate = args.aggregate;
  const split = args.split === undefined ? undefined : splitOptionsOf(args as SplitArgs);
  const { startRewardServer } = await import('../../serve/server.js');
  const server = await startRewardServer({ model: args.model, port: args.port, host: args.host, token, backend, split, aggregate, ...options });
  console.error(`prmkit serve: listening on ${server.url} (POST /v1/score, POST /get_reward, GET /health; reward = ${aggregate} of step scores)`);

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
  describe: 'Serve step scores over HTTP (POST /v1/score, OpenRLHF POST /get_reward), batching requests across clients',
  builder: (y: Argv) =>
    addSplitOptions(y)
      .option('model', modelOption(', fixed for the life of the server'))
      .option('port', { type: 'number', default: 8000, describe: 'TCP port (0: any free port, printed at start)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
      .option('token', { type: 'string', describe: 'require "Authorization: Bearer <token>" (or set PRMKIT_SERVE_TOKEN)' })
      .option('backend', backendOption())
      .option('max-batch-tokens', { type: 'number', default: DEFAULT_BATCHING.maxBatchTokens, describe: 'padded tokens per forward pass' })
      .option('max-wait-ms', { type: 'number', default: DEFAULT_BATCHING.maxWaitMs, describe: 'longest wait for other requests to share a forward pass' })
      .option('max-batch-requests', { type: 'number', describe: 'requests per forward pass (default unbounded; 1 turns batching off)' })
      .option('max-queue', { type: 'number', default: DEFAULT_LIMITS.maxQueue, describe: 'requests waiting at most; beyond: 503 + Retry-After' })
      .option('max-body-bytes', { type: 'number', default: DEFAULT_LIMITS.maxBodyBytes, describe: 'request body size limit (413)' })
      .option('max-steps', { type: 'number', default: DEFAULT_LIMITS.maxSteps, describe: 'steps per request limit (413)' })
      .option('max-tokens', { type: 'number', default: DEFAULT_LIMITS.maxTokens, describe: 'tokens per request limit (413)' })
      .option('aggregate', { type: 'string', default: 'min', describe: `step scores -> one reward per item (${AGGREGATORS.join(', ')}): /get_reward, and "reward" in /v1/score` })
      .option('allowed-hosts', { type: 'string', describe: 'extra names clients may use in the Host header, comma-separated ("*": any); by default only the bound address (and localhost on loopback), against DNS rebinding' })
      .option('body-timeout-ms', { type: 'number', default: DEFAULT_LIMITS.bodyTimeoutMs, describe: 'a request body must arrive within this (408)' })
      .option('max-bodies-per-address', { type: 'number', default: DEFAULT_LIMITS.maxBodiesPerAddress, describe: 'request bodies arriving at once from one client address (429 beyond)' })
      .option('encode-workers', { type: 'number', default: DEFAULT_ENCODE_POOL.size, describe: 'threads that tokenize requests off the event loop (0: on it)' })
      .group(['split', 'step-separator', 'split-min-chars', 'split-max-steps', 'think'], 'Step splitting ({problem, response} requests):')
      .example('$0 serve --model checkpoints/prm --port 8000 --token "$SECRET"', '')
      .example(`curl -s localhost:8000/v1/score -H 'Content-Type: application/json' -d '{"problem":"1+1?","steps":["1+1=2."]}'`, ''),
  handler: async (args) => {
    await runServe(args);
  },
};
