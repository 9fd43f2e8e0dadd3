#!/usr/bin/env node
'use strict';
// Runs the compiled build (dist/, written by `npm run build`) when it is there; otherwise the
// TypeScript sources through tsx, for development. IMAGE_SYNC_FROM_SOURCE=1 picks the sources
// even when a build exists (the tests do, so a stale build never stands in for src/).
const path = require('node:path');
const fs = require('node:fs');

const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (process.env.IMAGE_SYNC_FROM_SOURCE !== '1' && fs.existsSync(compiled)) {
  require(compiled);
} else {
  try {
    require.resolve('tsx/cjs');
  } catch {
    process.stderr.write('image-sync: no build in dist/ and no tsx to run the sources: run `npm run build`\n');
    process.exit(1);
  }
  require('tsx/cjs');
  require('../src/cli/main.ts');
}
