#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm ci` (the prepare script); run from a source checkout
// without a build, `npm run build` first.
import { main } from '../dist/src/cli/index.js';

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
