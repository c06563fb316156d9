#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever is still open after a command has finished must not keep the process alive.
setTimeout(() => process.exit(code), 3000).unref();
