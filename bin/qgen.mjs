#!/usr/bin/env node
// qgen command-line entry: loads the TypeScript sources through tsx (no build step needed after `npm ci`).
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../cli/main.ts');
await main(process.argv.slice(2));
