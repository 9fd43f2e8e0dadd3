/**
 * The bounds and defaults of a batch's policy, in one place: the CLI's `start`,
 * `schedule create` and `set-concurrency` validate with them and show their defaults in --help,
 * and workflow code may import them (this module has no Node imports).
 */
import { DEFAULT_POLICY } from '../shared';

export interface PolicyBound {
  /** The `start` option that sets it. */
  flag: string;
  min: number;
  max: number;
  default: number;
  /** What it means, for --help (the default and range are added). */
  help: string;
}

export const POLICY_BOUNDS = {
  maxConcurrency: {
    flag: '--max-concurrency',
    min: 1,
    max: 2000,
    default: DEFAULT_POLICY.maxConcurrency,
    help: 'files in flight at once',
  },
  maxResends: {
    flag: '--max-resends',
    min: 0,
    max: 100,
    default: DEFAULT_POLICY.maxResends,
    help: 'resends of one file before it is rolled back',
  },
  resendBackoffMs: {
    flag: '--resend-backoff-ms',
    min: 0,
    max: 3_600_000,
    default: DEFAULT_POLICY.resendBackoffMs,
    help: 'first wait before a resend, doubling each time',
  },
  toleratedFailurePercent: {
    flag: '--tolerated-failure-percent',
    min: 0,
    max: 100,
    default: DEFAULT_POLICY.toleratedFailurePercent,
    help: 'past this share of failed files the batch stops and ends FAILED',
  },
  outagePauseAfter: {
    flag: '--outage-pause-after',
    min: 0,
    max: 10_000,
    default: DEFAULT_POLICY.outagePauseAfter,
    help: 'pause by itself after this many transport failures in a row, across files; 0 never',
  },
  probeIntervalMs: {
    flag: '--probe-interval-ms',
    min: 100,
    max: 3_600_000,
    default: DEFAULT_POLICY.probeIntervalMs,
    help: 'while paused for an outage, probe the recording system this often',
  },
  claimPatienceMs: {
    flag: '--claim-patience-ms',
    min: 0,
    max: 86_400_000,
    default: DEFAULT_POLICY.claimPatienceMs!,
    help: 'how long a file waits while another live interaction delivers it; then it is rolled back unsent',
  },
  localSendMaxBytes: {
    flag: '--local-send-max-bytes',
    min: 0,
    max: 2 ** 40,
    default: DEFAULT_POLICY.localSendMaxBytes,
    help: 'files up to this size are sent inside the file workflow task, larger ones by a heartbeating activity',
  },
} as const satisfies Record<string, PolicyBound>;

export type BoundedPolicyField = keyof typeof POLICY_BOUNDS;

/** Whether `n` is a whole number within the field's bounds. */
export function withinPolicyBounds(field: BoundedPolicyField, n: number): boolean {
  const b = POLICY_BOUNDS[field];
  return Number.isInteger(n) && n >= b.min && n <= b.max;
}

/** `must be a whole number from MIN to MAX`, for the field. */
export function policyBoundsText(field: BoundedPolicyField): string {
  const b = POLICY_BOUNDS[field];
  return `a whole number from ${b.min} to ${b.max}`;
}

/** The --help text of a field: its meaning, default and range. */
export function policyHelp(field: BoundedPolicyField): string {
  const b = POLICY_BOUNDS[field];
  return `${b.help} (default ${b.default}; ${b.min} to ${b.max})`;
}
