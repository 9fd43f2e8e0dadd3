import { describe, expect, it } from 'vitest';
import { median, percentile } from '../../bench/stats';
import { cpuOfChangingSet } from '../../bench/stack';

describe('bench figures', () => {
  it('the median is the middle value of an odd count and the mean of the two middle ones of an even count', () => {
    expect(median([0.9, 0.7, 0.8])).toBe(0.8);
    expect(median([0.9, 0.8])).toBeCloseTo(0.85);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('a percentile is by nearest rank, within the values', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1, unsorted
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('the CPU of a changing set of processes', () => {
  it('keeps what an ended process used, so the total never falls, and counts a new one from zero', async () => {
    let pids = [1, 2];
    const cpu = new Map([
      [1, 1.0],
      [2, 2.0],
    ]);
    const read = async (pid: number) => cpu.get(pid) ?? 0;
    const total = cpuOfChangingSet(async () => pids, read);
    expect(await total()).toBe(3);

    // Backend 2 used a little more, then ended; backend 3 began.
    cpu.set(2, 2.5);
    expect(await total()).toBe(3.5);
    cpu.delete(2);
    cpu.set(3, 0.25);
    pids = [1, 3];
    expect(await total()).toBe(3.75);

    // A process that ends between the listing and its reading reads 0: its last reading stands.
    pids = [1, 3];
    cpu.delete(3);
    expect(await total()).toBe(3.75);
  });
});
