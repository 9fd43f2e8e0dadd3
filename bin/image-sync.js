#!/usr/bin/env node
'use strict';
// The CLI runs the TypeScript sources directly through tsx, so no build step stands between a
// checkout and a working command.
require('tsx/cjs');
require('../src/cli/main.ts');
