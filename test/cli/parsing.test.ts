/**
 * How the command line reads its arguments, in process (no Temporal): a repeatable option takes
 * one value each time and never swallows the positional argument after it.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, HELP_GROUPS, packageVersion } from '../../src/cli/main';

/** Parses argv with the command's action replaced, and returns what the action was given. */
async function parsed(argv: string[]): Promise<{ batch: string; flags: Record<string, unknown> }> {
  const program = buildProgram();
  program.exitOverride();
  const command = program.commands.find((c) => c.name() === argv[0]) as Command;
  let seen: { batch: string; flags: Record<string, unknown> } | undefined;
  command.action((batch: string, flags: Record<string, unknown>) => {
    seen = { batch, flags };
  });
  await program.parseAsync(argv, { from: 'user' });
  return seen!;
}

describe('retry --file', () => {
  it('is repeatable and leaves the batch id alone, wherever the batch id stands', async () => {
    expect(await parsed(['retry', '--file', 'O1/a.png', '--file', 'O2/b.png', 'b-1'])).toEqual({
      batch: 'b-1',
      flags: { file: ['O1/a.png', 'O2/b.png'], timeout: 30 },
    });
    expect(await parsed(['retry', '--file', 'O1/a.png', 'b-2'])).toEqual({
      batch: 'b-2',
      flags: { file: ['O1/a.png'], timeout: 30 },
    });
    expect(await parsed(['retry', 'b-3', '--file', 'O1/a.png', '--json'])).toEqual({
      batch: 'b-3',
      flags: { file: ['O1/a.png'], json: true, timeout: 30 },
    });
  });
});

describe('the program', () => {
  it('puts every command in one help group and knows its version', () => {
    const grouped = Object.values(HELP_GROUPS).flat() as string[];
    for (const c of buildProgram().commands) expect(grouped, c.name()).toContain(c.name());
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
