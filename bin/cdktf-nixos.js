#!/usr/bin/env node
// The command-line tool runs the TypeScript sources directly; tsx compiles on the fly.
require('tsx/cjs');
require('./cli.ts');
