/**
 * One definition of the policy's bounds and defaults: the defaults are the batch's, and the
 * CLI's start, schedule create and set-concurrency validate with it and show its defaults.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { POLICY_BOUNDS, type BoundedPolicyField } from '../../src/config/policy-bounds';
import { buildProgram } from '../../src/cli/main';
import { parsePolicyValue } from '../../src/cli/common';
import { DEFAULT_POLICY } from '../../src/shared';

const FIELDS = Object.keys(POLICY_BOUNDS) as BoundedPolicyField[];

function command(path: string[]): Command {
  let current: Command = buildProgram();
  for (const name of path) current = current.commands.find((c) => c.name() === name)!;
  return current;
}

describe('policy bounds', () => {
  it('defaults equal the batch defaults and lie within the bounds', () => {
    for (const field of FIELDS) {
      const b = POLICY_BOUNDS[field];
      expect(b.default, field).toBe(DEFAULT_POLICY[field]);
      expect(b.default).toBeGreaterThanOrEqual(b.min);
      expect(b.default).toBeLessThanOrEqual(b.max);
    }
  });

  it.each(FIELDS)('%s: accepts its bounds, refuses one past each and non-integers', (field) => {
    const b = POLICY_BOUNDS[field];
    const parse = parsePolicyValue(field);
    expect(parse(String(b.min))).toBe(b.min);
    expect(parse(String(b.max))).toBe(b.max);
    for (const bad of [String(b.min - 1), String(b.max + 1), '1.5', 'abc', '', '1e2']) {
      expect(() => parse(bad), bad).toThrow(`${b.flag} must be a whole number from ${b.min} to ${b.max}`);
    }
  });

  it('start --help shows every default and range from the definition', () => {
    const help = command(['start']).helpInformation().replace(/\s+/g, ' ');
    for (const field of FIELDS) {
      const b = POLICY_BOUNDS[field];
      expect(help).toContain(b.flag);
      expect(help).toContain(`(default ${b.default}; ${b.min} to ${b.max})`);
    }
  });

  it('schedule create --help and set-concurrency --help read the same definition', () => {
    const schedule = command(['schedule', 'create']).helpInformation().replace(/\s+/g, ' ');
    const mc = POLICY_BOUNDS.maxConcurrency;
    const mr = POLICY_BOUNDS.maxResends;
    expect(schedule).toContain(`(default ${mc.default}; ${mc.min} to ${mc.max})`);
    expect(schedule).toContain(`(default ${mr.default}; ${mr.min} to ${mr.max})`);
    const setConcurrency = command(['set-concurrency']).helpInformation().replace(/\s+/g, ' ');
    expect(setConcurrency).toContain(`(${mc.min} to ${mc.max})`);
  });

  it('the options of start and schedule create refuse values out of bounds', () => {
    for (const path of [['start'], ['schedule', 'create']]) {
      const cmd = command(path);
      for (const field of ['maxConcurrency', 'maxResends'] as const) {
        const option = cmd.options.find((o) => o.long === POLICY_BOUNDS[field].flag)!;
        expect(option, `${path.join(' ')} ${field}`).toBeDefined();
        expect(() => option.parseArg!(String(POLICY_BOUNDS[field].max + 1), undefined)).toThrow(
          /must be a whole number/,
        );
      }
    }
  });
});
