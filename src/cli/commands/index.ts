import type { CommandModule } from 'yargs';

// Each command lives in its own module; register it here, one line each.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
];
