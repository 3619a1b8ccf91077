#!/usr/bin/env node
// qgen command-line entry: loads the TypeScript sources through tsx (no build step needed after `npm ci`).
import { register } from 'tsx/esm/api';

// `qgen emit ... | head`: the reader went away; the output was wanted no further, which is no error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
register();
const { main } = await import('../cli/main.ts');
await main(process.argv.slice(2));
