/**
 * docs/reference/ is generated from the code (`npm run docs:reference`): the committed pages
 * must be exactly what the generator writes now, so a new option, command, variable, exit code
 * or metric fails here until the reference is regenerated.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { ENV_NAMES } from '../../src/config/env';
import { envHelpText } from '../../src/config/env-docs';
import { formattedReferencePages, REFERENCE_DIR } from '../../src/devtools/reference/generate';

describe('docs/reference', () => {
  it('matches the code: regenerate with `npm run docs:reference`', async () => {
    const pages = await formattedReferencePages();
    const committed = (await readdir(REFERENCE_DIR, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(REFERENCE_DIR, path.join(e.parentPath, e.name)))
      .sort();
    expect(committed, 'the pages in docs/reference/').toEqual([...pages.keys()].sort());
    for (const [file, text] of pages) {
      expect(await readFile(path.join(REFERENCE_DIR, file), 'utf8'), `docs/reference/${file}`).toBe(text);
    }
  });

  it('has a page for every command and names every variable of the schema', async () => {
    const pages = await formattedReferencePages();
    for (const cmd of buildProgram().commands) {
      if (cmd.name() !== 'help') expect(pages.has(`commands/${cmd.name()}.md`), cmd.name()).toBe(true);
    }
    const environment = pages.get('environment.md')!;
    const help = envHelpText();
    for (const name of ENV_NAMES) {
      expect(environment, name).toContain(`\`${name}\``);
      expect(help, name).toContain(name);
    }
  });
});
