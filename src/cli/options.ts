/**
 * Options several commands share, declared once so that their names, choices, help and checks
 * agree: --backend, --model (a PRM checkpoint directory), --batch-tokens and --endpoint, and the
 * checks of counts and sizes. Nothing here loads TensorFlow.js, so `prmkit --help` stays quick.
 */
import { parseEndpoints } from '../labels/client.js';
import { CLIENT_DEFAULTS } from '../labels/defaults.js';
import { BACKEND_NAMES, isBackendName, type BackendName } from '../backend/backend-names.js';
import { UsageError } from './errors.js';

/** --backend of a command that loads a model itself: absent means auto. */
export function backendOption(describe = 'TensorFlow.js backend') {
  return { choices: BACKEND_NAMES, default: 'auto' as BackendName, describe };
}

/** --backend of a command that runs recipes: absent leaves the recipe's own backend. */
export function backendOverrideOption(describe: string) {
  return { choices: BACKEND_NAMES, describe };
}

/** A --backend value that did not come through yargs (commands are also called as functions). */
export function parseBackend(value: string, flag = '--backend'): BackendName {
  if (!isBackendName(value)) throw new UsageError(`${flag} must be one of ${BACKEND_NAMES.join('|')}, got "${value}"`);
  return value;
}

const MODEL_DIR = 'PRM checkpoint directory (config.json, model.safetensors, tokenizer.json)';

/** --model DIR when the command cannot work without a model. */
export function modelOption(note?: string) {
  return { type: 'string', demandOption: true, describe: note ? `${MODEL_DIR}${note}` : MODEL_DIR } as const;
}

/** --model DIR when scores may come from elsewhere (a scores file or field). */
export function optionalModelOption(note: string) {
  return { type: 'string', describe: `${MODEL_DIR}${note}` } as const;
}

/** --batch-tokens: absent means the scorer's default. */
export function batchTokensOption(note = '') {
  return { type: 'number', describe: `padded tokens (rows x longest row) per forward batch${note}` } as const;
}

/** --endpoint "URL" or "URL1,URL2,...", read by the labels client's own parser. */
export function parseEndpointList(value: string, flag = '--endpoint'): string[] {
  try {
    return parseEndpoints(value);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

export function integerAtLeast(value: number, flag: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${value}`);
  return value;
}

export function positiveInt(value: number, flag: string): number {
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} must be a positive integer, got ${value}`);
  return value;
}

export function optionalPositiveInt(value: number | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : positiveInt(value, flag);
}

export function positiveNumber(value: number, flag: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a positive number, got ${value}`);
  return value;
}

/** What a --reward URL needs besides the URL: its token, and for vLLM's /pooling the PRM's tokenizer and model name. */
export interface RemoteRewardArgs {
  'reward-token'?: string;
  'reward-tokenizer'?: string;
  'reward-model'?: string;
}

/** The options that go with --reward URL (score, search). */
export const REMOTE_REWARD_OPTIONS = {
  'reward-token': { type: 'string', describe: 'its bearer token (or PRMKIT_SERVE_TOKEN)' },
  'reward-tokenizer': { type: 'string', describe: "with a vLLM .../pooling URL: the PRM's directory (its chat template and step token)" },
  'reward-model': { type: 'string', describe: 'with a vLLM .../pooling URL: the served model name, when vLLM serves several' },
} as const;

/** The remote reward options of parsed arguments (the token may come from the environment, so it never shows in `ps`). */
export function remoteRewardOptions(args: RemoteRewardArgs): { token?: string; tokenizerDir?: string; model?: string } {
  return { token: args['reward-token'] ?? process.env.PRMKIT_SERVE_TOKEN, tokenizerDir: args['reward-tokenizer'], model: args['reward-model'] };
}

/** --expose-workers: the opt-in to local workers whose TensorFlow servers listen on every interface. */
export const exposeWorkersOption = {
  type: 'boolean',
  default: false,
  describe:
    "With --workers: run the workers without a network namespace of their own (where none can be made). Their TensorFlow gRPC servers then listen on every interface, unauthenticated",
} as const;

/** --restart: with --resume, the permission to start training over when no checkpoint verifies. */
export const restartOption = {
  type: 'boolean',
  default: false,
  describe: 'With --resume: when checkpoints exist but none verifies, train from step 0 and replace them (without it that is an error)',
} as const;

/**
 * How long and how much one request to a model server may take: --retries, --timeout, --deadline
 * and --max-reply-bytes, the same options and defaults for `label` and `search`.
 */
export const requestBoundOptions = {
  retries: { type: 'number', default: CLIENT_DEFAULTS.retries, describe: 'retries per request on 429/5xx/timeouts/malformed replies (exponential backoff)' },
  timeout: { type: 'number', default: CLIENT_DEFAULTS.timeoutSeconds, describe: 'seconds one attempt may take, its whole reply included' },
  deadline: { type: 'number', default: CLIENT_DEFAULTS.deadlineSeconds, describe: 'seconds one request may take over all its attempts and backoffs' },
  'max-reply-bytes': { type: 'number', default: CLIENT_DEFAULTS.maxReplyBytes, describe: 'largest reply read; a longer one is cut off and the request fails' },
} as const;

export interface RequestBoundArgs {
  retries: number;
  timeout: number;
  deadline: number;
  'max-reply-bytes': number;
}

/** The checked values of requestBoundOptions, as the client takes them. */
export function requestBounds(args: RequestBoundArgs): { retries: number; timeoutMs: number; deadlineMs: number; maxReplyBytes: number } {
  return {
    retries: integerAtLeast(args.retries, '--retries', 0),
    timeoutMs: positiveNumber(args.timeout, '--timeout') * 1000,
    deadlineMs: positiveNumber(args.deadline, '--deadline') * 1000,
    maxReplyBytes: positiveInt(args['max-reply-bytes'], '--max-reply-bytes'),
  };
}
