import { describe, expect, it } from 'vitest';
import { median, percentile } from '../../bench/stats';

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
