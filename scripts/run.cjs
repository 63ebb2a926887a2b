#!/usr/bin/env node
// Runs a TypeScript entry point without a build step (local development and npm scripts).
// Production runs the compiled output instead: `npm run build && node dist/src/main.js`.
const path = require('node:path');
// The compiler options (decorators and their metadata) come from this project's tsconfig,
// whatever the working directory.
process.env.SWC_NODE_PROJECT ??= path.join(__dirname, '..', 'tsconfig.json');
require('@swc-node/register');
const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/run.cjs <file.ts> [args...]');
  process.exit(2);
}
process.argv.splice(1, 2, path.resolve(entry));
require(path.resolve(entry));
