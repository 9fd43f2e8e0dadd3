/**
 * Fault drawing for the recording-system simulator.
 *
 * Each request takes exactly one number from a pseudo-random stream and maps it onto bands
 * laid end to end, one per fault kind, each as wide as the kind's rate: with rates 0.1 and 0.2
 * the first kind owns [0, 0.1), the second [0.1, 0.3), and the rest means "no fault". So each
 * kind happens with exactly its configured probability while the rates add up to at most 1;
 * beyond that, kinds earlier in the order win and later ones are squeezed out.
 *
 * With a seed the streams are repeatable: the same seed and the same sequence of requests
 * give the same faults. PUTs and the other requests draw from two separate streams, so
 * reading receipts does not shift the faults that uploads get.
 */

export const PUT_FAULT_KINDS = ['fail', 'timeout', 'reject', 'drop', 'corrupt'] as const;
export const READ_FAULT_KINDS = ['fail', 'timeout'] as const;
export type FaultKind = (typeof PUT_FAULT_KINDS)[number];

export interface FaultRates {
  failRate: number;
  dropRate: number;
  corruptRate: number;
  rejectRate: number;
  timeoutRate: number;
}

const RATE_OF: Record<FaultKind, keyof FaultRates> = {
  fail: 'failRate',
  timeout: 'timeoutRate',
  reject: 'rejectRate',
  drop: 'dropRate',
  corrupt: 'corruptRate',
};

/** A source of numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: a small 32-bit generator, good enough to spread simulated faults. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Maps one draw onto the bands of `kinds`, in order; null means no fault. */
export function pickFault<K extends FaultKind>(draw: number, kinds: readonly K[], rates: FaultRates): K | null {
  let edge = 0;
  for (const kind of kinds) {
    edge += rates[RATE_OF[kind]];
    if (draw < edge) return kind;
  }
  return null;
}

/** Draws the fault of each request; the rates are read at every draw, so they can change live. */
export class FaultDrawer {
  private readonly putStream: Random;
  private readonly readStream: Random;

  constructor(
    private readonly rates: () => FaultRates,
    seed?: number,
  ) {
    this.putStream = seed === undefined ? Math.random : mulberry32(seed);
    // A second stream derived from the same seed, so uploads and reads do not interleave.
    this.readStream = seed === undefined ? Math.random : mulberry32((seed ^ 0x9e3779b9) >>> 0);
  }

  /** The fault of one PUT: any kind. */
  forPut(): FaultKind | null {
    return pickFault(this.putStream(), PUT_FAULT_KINDS, this.rates());
  }

  /** The fault of one GET, DELETE or list: only 'fail' and 'timeout' apply. */
  forRead(): (typeof READ_FAULT_KINDS)[number] | null {
    return pickFault(this.readStream(), READ_FAULT_KINDS, this.rates());
  }
}
