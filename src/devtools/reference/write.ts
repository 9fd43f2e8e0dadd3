/**
 * `npm run docs:reference`: writes docs/reference/ from the code (generate.ts), removing pages
 * of commands that no longer exist.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formattedReferencePages, REFERENCE_DIR } from './generate';

async function main(): Promise<void> {
  const pages = await formattedReferencePages();
  await rm(REFERENCE_DIR, { recursive: true, force: true });
  for (const [file, text] of pages) {
    const target = path.join(REFERENCE_DIR, file);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, text);
  }
  const written = await readdir(REFERENCE_DIR, { recursive: true });
  process.stdout.write(`wrote ${pages.size} pages into docs/reference/ (${written.length} entries)\n`);
}

void main();
