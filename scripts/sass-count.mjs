#!/usr/bin/env node
// Static SASS counts per kernel of generated/<arch> (dev tool): `node scripts/sass-count.mjs --help`.
// The logic is harness/sass_count.ts, loaded through tsx.
import { tsImport } from 'tsx/esm/api';

const { main } = await tsImport('../harness/sass_count.ts', import.meta.url);
process.exitCode = await main(process.argv.slice(2));
