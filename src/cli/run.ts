// Development entry: `node --import tsx src/cli/run.ts ...` runs the CLI from source (tests use it).
import { main } from './index.js';

await main(process.argv.slice(2));
