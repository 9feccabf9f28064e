import yargs from 'yargs';
import type { CommandModule } from 'yargs';
import { commands } from './commands/index.js';
import { UsageError } from './errors.js';

/** Entry point of the `prmkit` binary: exit 2 for bad usage, 1 for failures. */
export async function main(argv: string[]): Promise<void> {
  const parser = yargs(argv)
    .scriptName('prmkit')
    .usage('$0 <command> [options]\n\nTrain and evaluate process reward models for math reasoning.')
    .strict()
    .demandCommand(1, 'Name a command; see the list above.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      console.error(`${msg}\n\nRun 'prmkit --help' for usage.`);
      process.exit(2);
    });
  for (const command of commands) parser.command(command as CommandModule);
  try {
    await parser.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`prmkit: ${err.message}`);
      process.exit(2);
    }
    console.error(`prmkit: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.PRMKIT_DEBUG && err instanceof Error) console.error(err.stack);
    process.exit(1);
  }
}
