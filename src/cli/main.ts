#!/usr/bin/env node
/** `convsim`: the executable. Everything else is in `cli.ts`. */
import { runCli } from './cli.js';

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
