import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { integerAtLeast, positiveInt } from '../options.js';

interface PolicyArgs {
  strength: number;
  'recovery-scale': number;
}

interface ProblemArgs extends PolicyArgs {
  'min-steps': number;
  'max-steps': number;
  'start-min': number;
  'start-max': number;
  'add-max': number;
  'mul-max': number;
  'max-value': number;
  ops: string;
}

function addPolicyOptions<T>(y: Argv<T>): Argv<T & PolicyArgs> {
  return y
    .option('strength', { type: 'number', default: 0.5, describe: 'policy strength in [0,1]: lower slips more and recovers less' })
    .option('recovery-scale', { type: 'number', default: 1, describe: 'multiplies how often the policy reaches the right answer after a wrong step' });
}

function addProblemOptions<T>(y: Argv<T>): Argv<T & ProblemArgs> {
  return addPolicyOptions(y)
    .option('min-steps', { type: 'number', default: 3, describe: 'fewest operations (gold steps) per problem' })
    .option('max-steps', { type: 'number', default: 6, describe: 'most operations per problem' })
    .option('start-min', { type: 'number', default: 4, describe: 'smallest starting count' })
    .option('start-max', { type: 'number', default: 60, describe: 'largest starting count' })
    .option('add-max', { type: 'number', default: 40, describe: 'largest number added or taken away' })
    .option('mul-max', { type: 'number', default: 9, describe: 'largest factor or divisor' })
    .option('max-value', { type: 'number', default: 5000, describe: 'largest gold running value' })
    .option('ops', { type: 'string', default: '+,-,*,/', describe: 'operations used, comma separated' });
}

function policyOptions(args: PolicyArgs) {
  if (!(args.strength >= 0 && args.strength <= 1)) throw new UsageError('--strength must be in [0, 1]');
  if (!(args['recovery-scale'] >= 0)) throw new UsageError('--recovery-scale must be >= 0');
  return { strength: args.strength, recoveryScale: args['recovery-scale'] };
}

function worldOptions(args: ProblemArgs) {
  const ops = args.ops
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const op of ops) if (!['+', '-', '*', '/'].includes(op)) throw new UsageError(`--ops: unknown operation "${op}" (use + - * /)`);
  if (ops.length === 0) throw new UsageError('--ops names no operation');
  integerAtLeast(args['min-steps'], '--min-steps', 1);
  if (!Number.isInteger(args['max-steps']) || args['max-steps'] < args['min-steps']) throw new UsageError('--max-steps must be an integer >= --min-steps');
  for (const flag of ['start-min', 'start-max', 'add-max', 'mul-max', 'max-value'] as const) {
    positiveInt(args[flag], `--${flag}`);
  }
  if (args['start-max'] < args['start-min']) throw new UsageError('--start-max must be >= --start-min');
  if (args['mul-max'] < 2) throw new UsageError('--mul-max must be >= 2');
  if (args['max-value'] < args['start-max']) throw new UsageError('--max-value must be >= --start-max');
  return {
    problem: {
      minSteps: args['min-steps'],
      maxSteps: args['max-steps'],
      startMin: args['start-min'],
      startMax: args['start-max'],
      addMax: args['add-max'],
      mulMax: args['mul-max'],
      maxValue: args['max-value'],
      ops: ops as ('+' | '-' | '*' | '/')[],
    },
    policy: policyOptions(args),
  };
}

interface GenerateArgs extends ProblemArgs {
  problems: number;
  seed: number;
  out: string;
  'responses-per-problem': number;
  'bench-size'?: number;
  'bon-problems'?: number;
  'bon-n': number;
}

const generate: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Write problems, policy solutions with true step labels, and the sim step-error and Best-of-N sets',
  builder: (y: Argv) =>
    addProblemOptions(y)
      .option('problems', { type: 'number', demandOption: true, describe: 'number of problems' })
      .option('seed', { type: 'number', default: 0, describe: 'everything written is a function of this seed' })
      .option('responses-per-problem', { type: 'number', default: 1, describe: 'policy solutions per problem in solutions.jsonl' })
      .option('bench-size', { type: 'number', describe: 'samples in the step-error set (default: --problems)' })
      .option('bon-problems', { type: 'number', describe: 'problems in the Best-of-N set (default: --problems)' })
      .option('bon-n', { type: 'number', default: 8, describe: 'responses per Best-of-N problem' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory' })
      .example('$0 sim generate --problems 1000 --seed 1 --out data/sim', 'problems.jsonl, solutions.jsonl, processbench/sim.jsonl, bon/sim.jsonl'),
  handler: async (args) => {
    const problems = positiveInt(args.problems, '--problems');
    const perProblem = positiveInt(args['responses-per-problem'], '--responses-per-problem');
    const benchSize = integerAtLeast(args['bench-size'] ?? problems, '--bench-size', 2);
    const bonProblems = positiveInt(args['bon-problems'] ?? problems, '--bon-problems');
    const bonN = positiveInt(args['bon-n'], '--bon-n');
    const world = worldOptions(args);
    const { writeSimDataset } = await import('../../sim/dataset.js');
    const written = await writeSimDataset({ out: args.out, problems, seed: args.seed, perProblem, benchSize, bonProblems, bonN, world });
    console.log(written.summary);
    console.error(`prmkit: wrote ${written.files.join(', ')}`);
  },
};

interface ServeArgs extends PolicyArgs {
  port: number;
  host: string;
  seed: number;
  'fault-rate': number;
  'latency-ms': number;
  'malformed-rate': number;
}

const serve: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve the sim policy (/v1/completions) and judge (/v1/chat/completions) as an OpenAI-compatible API',
  builder: (y: Argv) =>
    addPolicyOptions(y)
      .option('port', { type: 'number', default: 8000, describe: 'port (0 = any free one)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
      .option('seed', { type: 'number', default: 0, describe: 'world seed (replies are a function of it and the request)' })
      .option('fault-rate', { type: 'number', default: 0, describe: 'share of requests answered 500 or 429 (for testing clients)' })
      .option('latency-ms', { type: 'number', default: 0, describe: 'each reply waits up to this long' })
      .option('malformed-rate', { type: 'number', default: 0, describe: 'share of replies with a broken JSON body' })
      .example('$0 sim serve --port 8000', 'then: prmkit label mc --endpoint http://127.0.0.1:8000 --model sim-policy ...')
      .example('$0 sim serve --port 8000 --fault-rate 0.2 --latency-ms 50 --malformed-rate 0.05', 'a flaky server, to test retries'),
  handler: async (args) => {
    for (const flag of ['fault-rate', 'malformed-rate'] as const) {
      if (!(args[flag] >= 0 && args[flag] <= 1)) throw new UsageError(`--${flag} must be in [0, 1]`);
    }
    if (!(args['latency-ms'] >= 0)) throw new UsageError('--latency-ms must be >= 0');
    integerAtLeast(args.port, '--port', 0);
    const policy = policyOptions(args);
    const { startSimServer } = await import('../../sim/server.js');
    const server = await startSimServer({
      port: args.port,
      host: args.host,
      seed: args.seed,
      faultRate: args['fault-rate'],
      latencyMs: args['latency-ms'],
      malformedRate: args['malformed-rate'],
      policy,
    });
    console.log(`prmkit sim serve: listening on ${server.url} (policy: POST /v1/completions, judge: POST /v1/chat/completions, GET /v1/models)`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    const s = server.stats;
    await server.close();
    console.error(
      `prmkit sim serve: stopped after ${s.requests} requests (${s.completions} completions, ${s.chats} chats; injected 500x${s.faults.status500} 429x${s.faults.status429} malformed x${s.faults.malformed})`,
    );
  },
};

export const simCommand: CommandModule = {
  command: 'sim <command>',
  describe: 'The synthetic reasoning world: generate data sets, or serve its policy and judge over HTTP',
  builder: (y: Argv) =>
    y
      .command(generate)
      .command(serve)
      .demandCommand(1, 'Name a sim command: generate or serve.'),
  handler: () => {},
};
