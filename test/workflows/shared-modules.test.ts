/**
 * The worker's sandbox evaluates the workflows' modules once and shares them between workflow
 * runs (src/build/workflow-bundle.ts, preloadedWorkflowModules). That is safe only while those
 * modules keep no state of their own: a module-level `let` or a Map would carry one run's state
 * into the next, and replay would then differ from the first run. The sandbox freezes the shared
 * modules' exports, but not their closures or collections; this test guards those.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';

const ROOT = path.join(__dirname, '..', '..');

/** The project's own modules in the bundle, as paths from the project root. */
function bundledSourceModules(code: string): string[] {
  return [...new Set([...code.matchAll(/^\/\*\*\*\/ "\.\/(src\/[^"]+\.ts)"/gm)].map((m) => m[1]!))].sort();
}

/** Module-level declarations that would keep state between runs of a shared module. */
export function moduleLevelState(text: string): string[] {
  return text
    .split('\n')
    .filter(
      (line) =>
        /^(export\s+)?(let|var)\s/.test(line) ||
        /^(export\s+)?const\s+\w+(\s*:[^=]+)?\s*=\s*new\s+(Map|Set|WeakMap|WeakSet|Array)\b/.test(line),
    );
}

describe('workflow modules shared between runs', () => {
  const code = readFileSync(inject('workflowBundlePath'), 'utf8');

  it('the bundle preloads the workflows, so a run does not evaluate them again', () => {
    const preload = /preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(code)?.[1] ?? '';
    expect(preload).toMatch(/src\/workflows\/index\.ts/);
  });

  it('no module of the project in the bundle keeps state at module level', () => {
    const modules = bundledSourceModules(code);
    expect(modules).toContain('src/workflows/sync-file.ts');
    expect(modules).toContain('src/shared.ts');
    const found = modules.flatMap((m) =>
      moduleLevelState(readFileSync(path.join(ROOT, m), 'utf8')).map((line) => `${m}: ${line}`),
    );
    expect(found).toEqual([]);
  });

  it('the check finds module-level state', () => {
    expect(moduleLevelState('let runs = 0;\nexport var last;\nconst seen = new Map<string, number>();')).toHaveLength(
      3,
    );
    expect(
      moduleLevelState('export const LIMIT = 3;\nfunction f() {\n  let n = 0;\n  const m = new Map();\n}\n'),
    ).toEqual([]);
  });
});
