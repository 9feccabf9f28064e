import { z } from 'zod';
import { CLIENT_DEFAULTS, MC_DEFAULTS, MC_LABEL_KINDS, MC_SEARCHES } from '../labels/defaults.js';
import { BACKEND_NAMES } from '../backend/backend-names.js';
import { KERNEL_CHOICES } from '../backend/fused/kernel-names.js';
import { SIM_JUDGE_MODEL, SIM_POLICY_MODEL } from '../sim/server.js';
import { SweepSchema } from '../sweep/schema.js';
import { WORD_SPACES_MODES } from '../model/word-spaces.js';
import { LORA_TARGETS } from '../model/lora-targets.js';
import { SHARD_OPTIMIZER_MODES } from '../train/memory-plan.js';

/**
 * The recipe schema: one YAML file drives a run through the stages data -> labels -> train ->
 * eval -> report. A stage runs when its key is present. Every object is strict, so a misspelt
 * key is an error that names it. Defaults are filled in, and recipe.resolved.yaml records them.
 */
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);
// Nested objects use .prefault({}) so that their own field defaults apply when the key is absent
// (zod 4's .default() would return the literal default without parsing it).

/** An OpenAI-compatible endpoint, or `sim`: start the built-in sim server and talk to it over HTTP. */
const endpoint = z.union([z.literal('sim'), z.url()]);

export const SimWorldSchema = z.strictObject({
  /** Fewest operations (gold steps) per problem. */
  min_steps: positiveInt.optional(),
  /** Most operations per problem. */
  max_steps: positiveInt.optional(),
  /** Smallest starting count. */
  start_min: positiveInt.optional(),
  /** Largest starting count. */
  start_max: positiveInt.optional(),
  /** Largest number added or taken away. */
  add_max: positiveInt.optional(),
  /** Largest factor or divisor. */
  mul_max: positiveInt.optional(),
  /** Largest gold running value. */
  max_value: positiveInt.optional(),
  /** Operations the problems use. */
  ops: z.array(z.enum(['+', '-', '*', '/'])).min(1).optional(),
  /** Policy strength in [0,1]: slips scale with 2*(1-strength) (src/sim/policy.ts). */
  policy_strength: probability.optional(),
  /** Multiplies the policy's recovery rates (right answer after a wrong step). */
  recovery_scale: z.number().nonnegative().optional(),
  /**
   * Spread of problem difficulty for the policy: slips scale by exp(spread * z), z ~ N(0,1) per
   * problem (default 0.8). Wider: more problems where every MC rollout fails from a right prefix.
   */
  difficulty_spread: z.number().nonnegative().optional(),
  /** Sim judge: P(a right step is flagged) = rate * hardness of its computation (default 0.045). */
  judge_false_alarm_rate: z.number().nonnegative().optional(),
});

export const DataSchema = z
  .strictObject({
    /** `sim`: generate problems and policy solutions; `file`: read step samples from `path`. */
    source: z.enum(['sim', 'file']),
    /** sim: number of problems to generate. */
    problems: positiveInt.default(1000),
    /** sim: policy solutions per problem. */
    responses_per_problem: positiveInt.default(1),
    /** sim: difficulty knobs of the problems and the policy (src/sim/problems.ts, src/sim/policy.ts); absent knobs take the sim's defaults. */
    world: SimWorldSchema.prefault({}),
    /** file: path of the data (JSON, JSONL, Arrow IPC, Parquet), relative to the recipe. */
    path: z.string().optional(),
    /** file: format name for the reader; auto = from the extension and the records. */
    format: z.string().default('auto'),
    /** Optional cap on samples read or generated. */
    limit: positiveInt.optional(),
    /** file: stop at bad records (naming file:line), or skip them into RUN/data/rejects.jsonl and go on. */
    on_bad_record: z.enum(['fail', 'skip']).default('fail'),
  })
  .superRefine((d, ctx) => {
    if (d.source === 'file' && !d.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'required when source is file' });
  });

/** Options of every method that asks a model server. */
const serverOptions = {
  /** An OpenAI-compatible base URL (vLLM, SGLang, ...), or `sim`: the built-in sim server, started in-process on loopback. */
  endpoint: endpoint.default('sim'),
  /** Requests in flight at once. */
  concurrency: positiveInt.default(CLIENT_DEFAULTS.concurrency),
  /** Sim server fault injection (testing the client), only with endpoint sim. */
  sim_faults: z
    .strictObject({
      /** Share of requests answered 500 or 429. */
      error_rate: probability.default(0),
      /** Each reply waits up to this long. */
      latency_ms: nonNegativeInt.default(0),
      /** Share of replies with a broken JSON body. */
      malformed_rate: probability.default(0),
    })
    .optional(),
};

/** Monte Carlo estimation: K policy completions per step prefix, graded against the gold answer. */
const mcOptions = {
  /** Model name sent to the policy endpoint. */
  policy_model: z.string().default(SIM_POLICY_MODEL),
  /** Policy completions per step prefix (the paper's 8). */
  rollouts: positiveInt.default(MC_DEFAULTS.rollouts),
  /** Evaluate every prefix up to the first negative (linear) or binary-search it (OmegaPRM). */
  search: z.enum(MC_SEARCHES).default(MC_DEFAULTS.search),
  /** Hard label = soft label > threshold. */
  threshold: probability.default(MC_DEFAULTS.threshold),
  /** Which MC labels the training data carries. */
  mc_labels: z.enum(MC_LABEL_KINDS).default(MC_DEFAULTS.labels),
};

/** LLM judge: names the first wrong step of each solution. */
const judgeOptions = {
  /** Model name sent to the judge endpoint. */
  judge_model: z.string().default(SIM_JUDGE_MODEL),
  /** Judge endpoint when it differs from `endpoint`. */
  judge_endpoint: endpoint.optional(),
};

/**
 * Each labeling method with the options it owns. mc: Monte Carlo estimation; judge: LLM judge;
 * consensus: keep samples where MC and the judge agree on the first error; truth: the sim's
 * known labels; given: labels already in the data.
 */
export const McLabelsSchema = z.strictObject({
  /** How step labels are made: mc, judge, consensus (both, kept where they agree), truth (the sim's), given (the data's own). */
  method: z.literal('mc'),
  ...serverOptions,
  ...mcOptions,
});
export const JudgeLabelsSchema = z.strictObject({
  /** How step labels are made: mc, judge, consensus (both, kept where they agree), truth (the sim's), given (the data's own). */
  method: z.literal('judge'),
  ...serverOptions,
  ...judgeOptions,
});
export const ConsensusLabelsSchema = z.strictObject({
  /** How step labels are made: mc, judge, consensus (both, kept where they agree), truth (the sim's), given (the data's own). */
  method: z.literal('consensus'),
  ...serverOptions,
  ...mcOptions,
  ...judgeOptions,
});
export const TruthLabelsSchema = z.strictObject({
  /** How step labels are made: mc, judge, consensus (both, kept where they agree), truth (the sim's), given (the data's own). */
  method: z.literal('truth'),
});
export const GivenLabelsSchema = z.strictObject({
  /** How step labels are made: mc, judge, consensus (both, kept where they agree), truth (the sim's), given (the data's own). */
  method: z.literal('given'),
});

const LABEL_METHODS = [McLabelsSchema, JudgeLabelsSchema, ConsensusLabelsSchema, TruthLabelsSchema, GivenLabelsSchema] as const;
const LABEL_OPTIONS = new Set(LABEL_METHODS.flatMap((m) => Object.keys(m.shape)));

/**
 * Leaves out the options of other methods, so that a sweep variant can switch the method of a
 * base recipe (`labels.method: truth` over a base with `rollouts: 8`) and the resolved recipe
 * shows only what applies. Keys no method knows stay, and fail as unknown keys.
 */
function ownOptionsOnly(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const method = (raw as { method?: unknown }).method;
  const schema = LABEL_METHODS.find((m) => m.shape.method.value === method);
  if (!schema) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([key]) => Object.hasOwn(schema.shape, key) || !LABEL_OPTIONS.has(key)));
}

export const LabelsSchema = z.preprocess(ownOptionsOnly, z.discriminatedUnion('method', LABEL_METHODS));

export const TokenizerSchema = z.strictObject({
  /** word-level: build a small tokenizer from the training corpus; file: a tokenizer.json directory. */
  kind: z.enum(['word-level', 'file']).default('word-level'),
  /** file: directory holding tokenizer.json (and tokenizer_config.json). */
  path: z.string().optional(),
  /** The token placed after every step; the PRM's score is read at it. */
  step_token: z.string().default('<extra_0>'),
  /** word-level: upper bound on the vocabulary. */
  max_vocab: positiveInt.default(4096),
  /**
   * word-level: spaces as their own tokens, joined to the next piece as BPE does (half the
   * sequence length), joined to words and signs only, never digits, as Qwen2's pre-tokenizer,
   * or dropped (delimiters only: short sequences and one token per digit).
   */
  spaces: z.enum(WORD_SPACES_MODES).default('separate'),
});

export const LmPretrainSchema = z.strictObject({
  /** Passes over the run's unlabelled solutions. */
  epochs: positiveInt.default(1),
  /** Stop after this many optimizer steps (all epochs when absent). */
  max_steps: positiveInt.optional(),
  /** Peak learning rate (cosine schedule). */
  lr: z.number().positive().default(3e-3),
  /** Share of the steps spent warming up the learning rate. */
  warmup_ratio: z.number().min(0).max(1).default(0.05),
  /** Rows per optimizer step (split into micro-batches by max_tokens_per_batch). */
  batch_size: positiveInt.default(16),
  /** Padded tokens (rows x longest row) per micro-batch. */
  max_tokens_per_batch: positiveInt.default(8192),
  /** AdamW weight decay. */
  weight_decay: z.number().min(0).default(0.01),
  /** Global-norm gradient clipping. */
  max_grad_norm: z.number().positive().default(1),
  /** Activation recomputation (as train.recompute). */
  recompute: z.boolean().default(false),
});

/**
 * LoRA on the decoder's projections (PEFT's LoraConfig names): the base stays frozen, the adapter
 * and the head train; checkpoints are PEFT adapter directories (see docs/lora-and-sharding.md).
 */
export const LoraSchema = z.strictObject({
  /** Rank of the low-rank update. */
  r: positiveInt.default(16),
  /** Scale of the update: alpha / r (PEFT's lora_alpha). */
  alpha: z.number().positive().default(32),
  /** Dropout on the adapter's input while training. */
  dropout: z.number().min(0).lt(1).default(0.05),
  /** The projections that get adapters (PEFT's target_modules names). */
  target_modules: z.array(z.enum(LORA_TARGETS)).min(1).default([...LORA_TARGETS]),
});

export const ModelSchema = z.strictObject({
  /** scratch: a new model of `config`; pretrained: a checkpoint or causal-LM directory at `path`. */
  init: z.enum(['scratch', 'pretrained']).default('scratch'),
  /** pretrained: a prmkit checkpoint, or a Hugging Face causal-LM directory (config.json, *.safetensors) that gets a new value head. */
  path: z.string().optional(),
  /** scratch: the Qwen2 architecture of the new model (Hugging Face config.json names). */
  config: z
    .strictObject({
      /** Width of the decoder. */
      hidden_size: positiveInt.default(64),
      /** Decoder layers. */
      num_hidden_layers: positiveInt.default(2),
      /** Query heads. */
      num_attention_heads: positiveInt.default(4),
      /** Key/value heads (grouped-query attention when fewer than the query heads). */
      num_key_value_heads: positiveInt.default(2),
      /** Width of the SwiGLU MLP. */
      intermediate_size: positiveInt.default(128),
      /** Longest sequence the model is built for. */
      max_position_embeddings: positiveInt.default(512),
      /** RoPE base. */
      rope_theta: z.number().positive().default(10000),
      /** RMSNorm epsilon. */
      rms_norm_eps: z.number().positive().default(1e-6),
      /** Share the input embedding with the LM head. */
      tie_word_embeddings: z.boolean().default(true),
      /** Std of the normal initialiser of new weights (HF initializer_range). */
      initializer_range: z.number().positive().default(0.02),
    })
    .prefault({}),
  /**
   * Causal-LM pretraining of the decoder on the run's unlabelled solutions (next-token loss,
   * tied embedding as the LM head) before PRM training: what a from-scratch model lacks that a
   * real PRM's instruct LM has. Absent: none.
   */
  pretrain_lm: LmPretrainSchema.optional(),
  /** Train a LoRA adapter over a pretrained base instead of every weight. Absent: full fine-tuning. */
  lora: LoraSchema.optional(),
}).superRefine((m, ctx) => {
  if (m.lora && m.init !== 'pretrained') ctx.addIssue({ code: 'custom', path: ['lora'], message: 'LoRA adapts a pretrained base: set model.init to pretrained and model.path' });
  if (m.lora && m.pretrain_lm) ctx.addIssue({ code: 'custom', path: ['lora'], message: 'model.pretrain_lm trains every weight; it does not combine with model.lora' });
});

export const TrainSchema = z.strictObject({
  /** Share of problems held out as the dev split (split by problem, seeded); 0 = no dev split. */
  dev_fraction: z.number().min(0).max(0.9).default(0.1),
  /** Passes over the training samples. */
  epochs: positiveInt.default(1),
  /** Stops after this many optimizer steps even if epochs remain. */
  max_steps: positiveInt.optional(),
  /** Peak learning rate. */
  lr: z.number().positive().default(1e-3),
  /** Learning-rate decay after warmup. */
  schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
  /** Warmup in optimizer steps (overrides warmup_ratio). */
  warmup_steps: nonNegativeInt.optional(),
  /** Share of the optimizer steps spent warming up. */
  warmup_ratio: probability.default(0.05),
  /** AdamW decoupled weight decay. */
  weight_decay: z.number().nonnegative().default(0.01),
  /** Regular expressions of parameter names that get no weight decay (biases and norms). */
  no_decay: z.array(z.string()).default(['\\.bias$', 'norm\\.weight$', '(^|\\.)norm$']),
  /** AdamW beta1. */
  beta1: probability.default(0.9),
  /** AdamW beta2. */
  beta2: probability.default(0.999),
  /** AdamW epsilon. */
  eps: z.number().positive().default(1e-8),
  /** Global-norm clipping; 0 turns it off. */
  max_grad_norm: z.number().nonnegative().default(1),
  /** Micro-batches of batch_size rows per optimizer step: each step trains batch_size x grad_accumulation rows. */
  grad_accumulation: positiveInt.default(1),
  /**
   * Activation recomputation: keep only each decoder layer's input in the forward pass and
   * recompute the layer in the backward pass (about a third more compute, activation memory of
   * one layer). For real-size models; see `prmkit plan`.
   */
  recompute: z.boolean().default(false),
  /**
   * fused: the decoder's attention (no T x T tensor), RMSNorm and SwiGLU run as prmkit's fused
   * native kernels, forward and backward; eager: as tfjs ops. Governs every model forward of
   * the run (training, LM pretraining, dev evaluation, scoring). Where the backend lacks the
   * fused kernels (wasm, cpu, a binding built before them) the run falls back to eager and
   * says why in its log and manifest (backend.kernels).
   */
  kernels: z.enum(KERNEL_CHOICES).default('fused'),
  /**
   * Data-parallel runs (`--workers N` or TF_CONFIG): shard the AdamW state over the workers
   * (ZeRO). none: every worker holds all moments and the whole summed gradient. states (stage
   * 1): each worker keeps the moments of its 1/N flat slice of the parameters and updates only
   * that slice; gradients are reduce-scattered once a step and the new weights all-gathered.
   * states+gradients (stage 2): gradients are also reduce-scattered micro-batch by micro-batch as
   * the backward pass finishes them (with `recompute`, layer by layer), so no worker holds the
   * whole gradient. Checkpoints are the same files whatever the setting and the worker count:
   * a run resumes with another N. One worker: no effect. See `prmkit plan --shard-optimizer`.
   */
  shard_optimizer: z.enum(SHARD_OPTIMIZER_MODES).default('none'),
  /**
   * Weight of an auxiliary next-token loss on the training text (tied embedding as LM head),
   * added to the step loss; 0 turns it off. Keeps a pretrained decoder's reading of the
   * solutions while the step labels are learned (see recipes/sim-base.yaml for what it buys).
   */
  lm_loss_weight: z.number().nonnegative().default(0),
  /** Largest safetensors file a checkpoint writes, in bytes (Hugging Face's 5 GB by default). */
  max_shard_bytes: positiveInt.default(5_000_000_000),
  /** Rows per micro-batch before the token cap; an optimizer step trains batch_size x grad_accumulation rows over all workers, split into more micro-batches where max_tokens_per_batch requires it. */
  batch_size: positiveInt.default(16),
  /** Padded tokens (rows x longest row) per micro-batch: caps memory, never the rows of a step. */
  max_tokens_per_batch: positiveInt.default(4096),
  /**
   * Batches of similar length (little padding; HF's group_by_length). Such batches are not random
   * samples: length goes with the number of steps and of errors (see recipes/sim-base.yaml, which
   * turns it off); turn it off where padding is cheap.
   */
  group_by_length: z.boolean().default(true),
  /** Longest encoded sample; longer ones follow `truncation`. */
  max_length: positiveInt.default(512),
  /** A sample longer than max_length: dropped, or cut to the steps that fit. */
  truncation: z.enum(['drop', 'keep-first-steps']).default('keep-first-steps'),
  /** hard: 0/1 step labels; soft: MC's share of successful rollouts as the target. */
  label_mode: z.enum(['hard', 'soft']).default('hard'),
  /** The step loss. */
  loss: z
    .strictObject({
      /** ce: 2-class cross-entropy on the step token (the paper's); bce: one logit; mse: regression on the probability. */
      kind: z.enum(['ce', 'bce', 'mse']).default('ce'),
      /** [weight of wrong steps, weight of correct steps]. */
      class_weights: z.tuple([z.number().nonnegative(), z.number().nonnegative()]).default([1, 1]),
    })
    .prefault({}),
  /** Which weights train. */
  freeze: z
    .strictObject({
      /** Train only the value head. */
      head_only: z.boolean().default(false),
      /** Train only the last N decoder layers (plus the head and final norm). */
      train_last_layers: nonNegativeInt.optional(),
    })
    .prefault({}),
  /** Dev evaluation every N optimizer steps (0: only at the end). */
  eval_every: nonNegativeInt.default(50),
  /** Checkpoint every N optimizer steps (0: only at the end and when the dev metric improves). */
  save_every: nonNegativeInt.default(50),
  /** Step checkpoints kept (plus the best). */
  keep_last: positiveInt.default(2),
  /**
   * The dev metric that picks the best checkpoint and drives early stopping. dev_loss by default:
   * it moves with every improvement, where F1 and accuracy at a threshold can sit still while the
   * model learns (first_error_f1 is taken at the threshold that maximises it on the dev split).
   */
  metric: z.enum(['first_error_f1', 'step_auroc', 'step_accuracy', 'dev_loss']).default('dev_loss'),
  /** Stop when the metric has not improved for this many evaluations (0: never). */
  patience: nonNegativeInt.default(0),
  /** Which weights become checkpoints/final: the best dev checkpoint or the last step. */
  final: z.enum(['best', 'last']).default('best'),
  /** A metrics.jsonl train line (and TensorBoard point) every N optimizer steps. */
  log_every: positiveInt.default(10),
  /** Seed of the data order (default: the recipe's seed). */
  seed: z.number().int().optional(),
});

/** How free-text responses are cut into steps for the PRM (src/data/step-split.ts). */
export const StepSplitSchema = z.strictObject({
  /** Cut on blank lines (the paper's), lines or sentences. */
  mode: z.enum(['paragraphs', 'lines', 'sentences']).default('paragraphs'),
  /** Cut on this string instead of the mode. */
  separator: z.string().min(1).optional(),
  /** Merge steps shorter than this many characters into the next one (0: none). */
  min_chars: nonNegativeInt.default(0),
  /** At most this many steps per response; the tail is merged into the last. */
  max_steps: positiveInt.optional(),
  /** A <think>...</think> block: split and scored, skipped, or scored as one step. */
  think: z.enum(['scored', 'skipped', 'alone']).default('scored'),
});

export const EvalSchema = z.strictObject({
  /**
   * The sim benchmarks (truth-labelled step-error set and Best-of-N with N policy samples per
   * problem), for the trained PRM and, with baselines, for constant and random scores.
   */
  sim: z
    .strictObject({
      /** Samples in the sim step-error test (half with a process error). */
      samples: positiveInt.default(400),
      /** Policy samples per Best-of-N problem. */
      n: positiveInt.default(8),
      /** Seed of the test sets (fixed across runs, so runs compare). */
      seed: z.number().int().default(1001),
      /** Also score constant and random scorers. */
      baselines: z.boolean().default(true),
    })
    .optional(),
  /** Real ProcessBench: a folder of <subset>.json files or one file (relative to the recipe). */
  processbench: z
    .strictObject({
      /** Folder of <subset>.json files or one file, relative to the recipe. */
      path: z.string(),
      /** Subsets to evaluate (default: all present). */
      subsets: z.array(z.string()).optional(),
      /**
       * A number; `dev`: chosen on the run's dev split; `auto`: chosen on the gsm8k subset of the
       * test (ProcessBench's practice). Absent: as `eval.threshold`.
       */
      threshold: z.union([z.number(), z.literal('auto'), z.literal('dev')]).optional(),
    })
    .optional(),
  /**
   * PRMBench (a folder of its *.jsonl files, relative to the recipe): PRMScore overall and per
   * error class with the official loader and metric; a step is valid when its score > threshold.
   */
  prmbench: z
    .strictObject({
      /** Folder of PRMBench *.jsonl files, relative to the recipe. */
      path: z.string(),
      /** A number, or `dev`: chosen on the run's dev split. Absent: as `eval.threshold` (0.5 where that is `auto`). */
      threshold: z.union([z.number(), z.literal('dev')]).optional(),
    })
    .optional(),
  /** Real Best-of-N candidate files (relative to the recipe). */
  bon: z
    .strictObject({
      /** Candidate files (problem, answer, responses), relative to the recipe. */
      candidates: z.array(z.string()).min(1),
      /** Responses per problem used (the first n). */
      n: positiveInt.default(8),
      /** How step scores become one score per response. */
      aggregators: z.array(z.enum(['min', 'prod', 'last', 'mean', 'geomean'])).default(['min', 'prod', 'last', 'mean']),
    })
    .optional(),
  /**
   * Threshold of first-error predictions on the sim step-error set, and of ProcessBench and
   * PRMBench unless they set their own: a number; `dev` = the one that maximises first-error F1
   * on the run's dev split (scored by the final model; 0.5 when the dev split lacks erroneous or
   * correct samples); `auto` = the one that maximises F1 on the test set itself (ProcessBench's
   * practice for scalar PRMs).
   */
  threshold: z.union([z.number(), z.literal('auto'), z.literal('dev')]).default('dev'),
  /** Padded tokens per forward pass when scoring. */
  max_tokens_per_batch: positiveInt.default(8192),
  /** Step splitting of the Best-of-N responses scored by the model. */
  split: StepSplitSchema.prefault({}),
});

export const ReportSchema = z.strictObject({
  /** Title of report.md (default: prmkit run: <name>). */
  title: z.string().optional(),
  /**
   * Log the finished run to an MLflow tracking server: the resolved recipe as params, train/dev
   * metrics per step, the headline metrics, the report files as artifacts (docs/integrations.md).
   */
  mlflow: z
    .strictObject({
      /** http(s) URL of the MLflow tracking server (its REST API; MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD for auth). */
      tracking_uri: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of an MLflow tracking server' }),
      /** MLflow experiment the run goes into (created when missing). */
      experiment: z.string().min(1),
      /** MLflow run name (default: the recipe's name). */
      run_name: z.string().min(1).optional(),
    })
    .optional(),
});

export const RecipeSchema = z.strictObject({
  /** Path(s) of recipes this one inherits from (resolved before validation; kept for the record). */
  extends: z.union([z.string(), z.array(z.string())]).optional(),
  /** Names the run in logs and reports. */
  name: z.string().default('run'),
  /** Free text, shown at the top of report.md. */
  description: z.string().optional(),
  /** Seeds the sim data, the train/dev split, the initial weights and the batch order. */
  seed: z.number().int().default(0),
  /** TensorFlow.js backend; auto takes the first that loads of tensorflow-gpu, tensorflow, wasm, cpu. */
  backend: z.enum(BACKEND_NAMES).default('auto'),
  /** Where the step samples come from. */
  data: DataSchema.optional(),
  /** How the samples get step labels. */
  labels: LabelsSchema.optional(),
  /** The tokenizer (a word-level one built from the data, or a tokenizer.json). */
  tokenizer: TokenizerSchema.optional(),
  /** The PRM: a new model, or a pretrained one. */
  model: ModelSchema.optional(),
  /** Fine-tuning the PRM. */
  train: TrainSchema.optional(),
  /** Benchmarks of the final model. */
  eval: EvalSchema.optional(),
  /** report.md. */
  report: ReportSchema.optional(),
  /** Points for `prmkit sweep` (src/sweep/schema.ts); `prmkit run` ignores it. */
  sweep: SweepSchema.optional(),
});

export type Recipe = z.infer<typeof RecipeSchema>;
export type DataConfig = z.infer<typeof DataSchema>;
export type LabelsConfig = z.infer<typeof LabelsSchema>;
export type LabelMethod = LabelsConfig['method'];
export type McLabelsConfig = z.infer<typeof McLabelsSchema>;
export type JudgeLabelsConfig = z.infer<typeof JudgeLabelsSchema>;
export type ConsensusLabelsConfig = z.infer<typeof ConsensusLabelsSchema>;
export type TokenizerConfig = z.infer<typeof TokenizerSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type LoraRecipeConfig = z.infer<typeof LoraSchema>;
export type LmPretrainConfig = z.infer<typeof LmPretrainSchema>;
export type TrainConfig = z.infer<typeof TrainSchema>;
export type EvalConfig = z.infer<typeof EvalSchema>;
export type StepSplitConfig = z.infer<typeof StepSplitSchema>;
export type ReportConfig = z.infer<typeof ReportSchema>;
