#!/usr/bin/env node
'use strict';
// Runs the compiled build (dist/, written by `npm run build`) when it is there and up to date;
// otherwise the TypeScript sources through tsx, for development. A build older than any file
// under src/ is passed over, so an edit is never hidden by a stale build.
// IMAGE_SYNC_FROM_SOURCE=1 always picks the sources (the tests set it).
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const compiled = path.join(root, 'dist', 'cli', 'main.js');
// The build's last step writes the workflow bundle: its time is the build's time.
const stamp = path.join(root, 'dist', 'workflow-bundle.js');

function newestUnder(dir) {
  let newest = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  if (!fs.existsSync(compiled) || !fs.existsSync(stamp)) return false;
  return newestUnder(path.join(root, 'src')) <= fs.statSync(stamp).mtimeMs;
}

if (process.env.IMAGE_SYNC_FROM_SOURCE !== '1' && buildIsCurrent()) {
  require(compiled);
} else {
  try {
    require.resolve('tsx/cjs');
  } catch {
    process.stderr.write('image-sync: no current build in dist/ and no tsx to run the sources: run `npm run build`\n');
    process.exit(1);
  }
  require('tsx/cjs');
  require('../src/cli/main.ts');
}
