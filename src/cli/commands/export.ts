import type { Argv, CommandModule } from 'yargs';
import { backendOption, parseBackend } from '../options.js';
import { refuseOutputOverInput } from '../outputs.js';
import { UsageError } from '../errors.js';

// TensorFlow.js is imported only when the command runs, so `prmkit --help` stays quick.

interface ExportArgs {
  adapter: string;
  out: string;
  merge: boolean;
  base?: string;
  backend: string;
}

/**
 * `prmkit export --merge`: a LoRA adapter directory (prmkit's or PEFT's) folded into its base as a
 * plain checkpoint (config.json, model.safetensors, tokenizer files) that scores like the
 * adapter and loads anywhere a Qwen2.5-Math-PRM checkpoint does.
 */
export async function runExport(args: ExportArgs): Promise<{ parameters: number }> {
  if (!args.merge) throw new UsageError('export writes a merged checkpoint: pass --merge (the adapter directory itself is already PEFT\'s format)');
  const backend = parseBackend(args.backend);
  await refuseOutputOverInput([args.adapter], [args.out]);
  const { selectBackend } = await import('../../backend/backend.js');
  await selectBackend(backend);
  const { isAdapterDir } = await import('../../model/peft-adapter.js');
  if (!(await isAdapterDir(args.adapter))) throw new UsageError(`${args.adapter}: no adapter_config.json (not a LoRA adapter directory)`);
  const { loadPrm, savePrmCheckpoint } = await import('../../model/checkpoint.js');
  const { model, files } = await loadPrm(args.adapter, { base: args.base });
  try {
    model.mergeLora();
    await savePrmCheckpoint(model, args.out, files);
    return { parameters: model.numParameters() };
  } finally {
    model.dispose();
  }
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <adapter>',
  describe: 'Merge a LoRA adapter into its base and write a plain PRM checkpoint',
  builder: (y: Argv) =>
    y
      .positional('adapter', { type: 'string', demandOption: true, describe: 'LoRA adapter directory (adapter_config.json + adapter_model.safetensors)' })
      .option('merge', { type: 'boolean', default: false, describe: 'Fold the adapter into the base weights (W + alpha/r * B A)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Directory of the merged checkpoint' })
      .option('base', { type: 'string', describe: "Base model directory (default: the adapter's base_model_name_or_path)" })
      .option('backend', backendOption())
      .example('$0 export runs/lora/checkpoints/final --merge --out prm-merged', 'A plain checkpoint from a LoRA run'),
  handler: async (args) => {
    const { parameters } = await runExport(args);
    process.stderr.write(`export: merged ${args.adapter} into ${args.out} (${parameters} parameters)\n`);
  },
};
