/** The batch's limits as plain functions: what set-limits may change, and what it changes. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, type BatchCarry } from '../../src/shared';
import { changeLimits, describeLimits, isPaced, whyNotSetLimits } from '../../src/workflows/batch-limits';
import { newCarry } from '../../src/workflows/batch-state';

function carry(): BatchCarry {
  const c = newCarry(DEFAULT_POLICY);
  c.limits = { batch: {}, targets: { east: { maxRequestsPerSecond: 5 }, west: {} } };
  return c;
}

describe('batch limits', () => {
  it('paces a batch with any limit, of its own or of a target', () => {
    expect(isPaced(undefined)).toBe(false);
    expect(isPaced({ batch: {}, targets: { west: {} } })).toBe(false);
    expect(isPaced({ batch: { maxBytesPerSecond: 1 }, targets: {} })).toBe(true);
    expect(isPaced(carry().limits)).toBe(true);
  });

  it('refuses what cannot apply, with the reason', () => {
    const c = carry();
    expect(whyNotSetLimits(c, {})).toMatch(/give --max-bytes-per-second/);
    expect(whyNotSetLimits(c, { maxBytesPerSecond: -5 })).toMatch(/0 \(no limit\) or more, got -5/);
    expect(whyNotSetLimits(c, { maxRequestsPerSecond: Number.NaN })).toMatch(/got NaN/);
    expect(whyNotSetLimits(c, { target: 'north', maxBytesPerSecond: 5 })).toMatch(
      /unknown target "north" \(this batch sends to: east, west\)/,
    );
    expect(whyNotSetLimits(c, null)).toMatch(/give the limits/);
    expect(whyNotSetLimits(c, { target: 'west', maxBytesPerSecond: 0 })).toBeUndefined();
    c.cancelRequested = true;
    expect(whyNotSetLimits(c, { maxBytesPerSecond: 5 })).toBe('the batch is cancelled');
  });

  it("changes the batch's or a target's limits, keeps what is not given, and lifts with 0", () => {
    const c = carry();
    changeLimits(c, { maxBytesPerSecond: 1000 });
    changeLimits(c, { target: 'east', maxBytesPerSecond: 200 });
    expect(c.limits).toEqual({
      batch: { maxBytesPerSecond: 1000 },
      targets: { east: { maxRequestsPerSecond: 5, maxBytesPerSecond: 200 }, west: {} },
    });
    expect(describeLimits(c.limits)).toBe('limits: batch 1000 bytes/s · east 200 bytes/s, 5 requests/s');
    changeLimits(c, { maxBytesPerSecond: 0 });
    changeLimits(c, { target: 'east', maxBytesPerSecond: 0, maxRequestsPerSecond: 0 });
    expect(isPaced(c.limits)).toBe(false);
    expect(describeLimits(c.limits)).toBeUndefined();
  });
});
