#!/usr/bin/env node
// The meshmedic command: runs the compiled CLI (dist/, built by `npm install` in a checkout or carried by the packed tarball).
// The V8 heap flags of the long-running commands are set before the CLI's modules load (see src/runtime/v8-footprint.ts).
import { applyFootprint } from '../dist/runtime/v8-footprint.js';
applyFootprint(process.argv.slice(2));
const { main } = await import('../dist/cli/main.js');
main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; });
