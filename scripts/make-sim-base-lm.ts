/**
 * Makes the sim base LM (src/sim/base-lm.ts) from a config file such as recipes/base-lm/sim-base-lm.yaml:
 *
 *   node --import tsx scripts/make-sim-base-lm.ts recipes/base-lm/sim-base-lm.yaml --out checkpoints/sim-base-lm [--backend tensorflow]
 *
 * The config holds the world (recipe data.world keys), the decoder size (model.config keys), the
 * LM training (model.pretrain_lm keys), the corpus (gold, policy and reflective solutions), the
 * tokenizer's spaces and the seed.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { selectBackend, type BackendName } from '../src/backend/backend.js';
import { LmPretrainSchema, ModelSchema, SimWorldSchema } from '../src/recipes/schema.js';
import { simWorldOptions } from '../src/run/data-stage.js';
import { pretrainSimBaseLm } from '../src/sim/base-lm.js';
import { WORD_SPACES_MODES } from '../src/model/word-tokenizer.js';

const ConfigSchema = z.strictObject({
  seed: z.number().int(),
  problems: z.number().int().nonnegative(),
  policy: z.number().int().nonnegative().default(0),
  reflective: z.number().int().nonnegative().default(0),
  spaces: z.enum(WORD_SPACES_MODES).default('separate'),
  world: SimWorldSchema,
  model: ModelSchema.shape.config,
  lm: LmPretrainSchema,
});

function usage(message: string): never {
  console.error(`make-sim-base-lm: ${message}\nusage: node --import tsx scripts/make-sim-base-lm.ts CONFIG.yaml --out DIR [--backend NAME]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const configPath = args.find((a, i) => !a.startsWith('--') && !['--out', '--backend'].includes(args[i - 1]));
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = flag('--out');
if (!configPath) usage('no config file given');
if (!out) usage('--out DIR is required');
let raw: unknown;
try {
  raw = YAML.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  usage(`${configPath}: ${(err as Error).message}`);
}
const parsed = ConfigSchema.safeParse(raw);
if (!parsed.success) usage(`${configPath}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
const cfg = parsed.data;
await selectBackend((flag('--backend') ?? 'auto') as BackendName);
const result = await pretrainSimBaseLm(out, {
  world: simWorldOptions(cfg.world),
  problems: cfg.problems,
  policy: cfg.policy,
  reflective: cfg.reflective,
  spaces: cfg.spaces,
  seed: cfg.seed,
  model: cfg.model,
  lm: cfg.lm,
  log: (line) => console.error(line),
  progress: true,
});
console.log(JSON.stringify(result));
