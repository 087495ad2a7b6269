#!/usr/bin/env node
// The meshmedic command: runs the compiled CLI (dist/, built by `npm install` in a checkout or carried by the packed tarball).
import { main } from '../dist/cli/main.js';
main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; });
