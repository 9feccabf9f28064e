import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';

interface ReportArgs {
  dirs: string[];
  out?: string;
  title?: string;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <dirs..>',
  describe: 'Markdown report with SVG plots over run and sweep directories (sweep shards merged)',
  builder: (y: Argv) =>
    y
      .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'Run directories (prmkit run --out) and/or sweep directories (prmkit sweep --out)' })
      .option('out', { type: 'string', describe: 'Output directory (default: the sweep directory itself, or RUN/report for one run; required for several inputs)' })
      .option('title', { type: 'string', describe: 'Report title' })
      .example('$0 report runs/label-ablation', 'Rebuild a sweep\'s report.md, plots/ and summary.json')
      .example('$0 report /shared/thr-shard0 /shared/thr-shard1 --out runs/thr', 'Merge the shards of a sweep run on two machines')
      .example('$0 report runs/quickstart runs/qs-lr3e-3 --out runs/compare', 'Compare two runs'),
  handler: async (args) => {
    const { writeReport } = await import('../../report/report.js');
    const { isRunDir } = await import('../../report/run-data.js');
    const { isSweepDir } = await import('../../report/collect.js');
    let out = args.out;
    if (!out) {
      if (args.dirs.length !== 1) throw new UsageError('several inputs: name the output directory with --out');
      const dir = resolve(args.dirs[0]);
      if (isRunDir(dir)) out = join(dir, 'report');
      else if (isSweepDir(dir)) out = dir;
      else throw new UsageError(`${args.dirs[0]}: neither a run directory nor a sweep directory`);
    }
    try {
      const result = await writeReport(args.dirs, { out, title: args.title });
      process.stdout.write(`${JSON.stringify({ report: result.markdownPath, summary: result.summaryPath, plots: result.plots, runs: result.runs, missing: result.missing })}\n`);
    } catch (err) {
      if (err instanceof Error && /no such directory|neither a run directory/.test(err.message)) throw new UsageError(err.message);
      throw err;
    }
  },
};
