/**
 * The types of rate limits and notifications, shared by the CLI, the activities and the workflows
 * (re-exported by shared.ts). No imports: the workflow bundle includes this module, and shared.ts
 * imports it, never the other way round (the notification body, which needs the batch's tally,
 * lives in shared.ts).
 */

/** Rate limits of one scope; an absent or 0 value means no limit. */
export interface RateLimit {
  maxBytesPerSecond?: number;
  maxRequestsPerSecond?: number;
}

/** The limits a batch holds its sends and verifications to, on every worker. */
export interface BatchLimits {
  batch: RateLimit;
  /** By target name: every configured target is listed, with or without limits. */
  targets: Record<string, RateLimit>;
}

/** What `image-sync set-limits` asks: a value of 0 lifts that limit; an absent one keeps it. */
export interface LimitsChange extends RateLimit {
  /** The target whose limits change; the batch's own when absent. */
  target?: string;
}

export interface LimitsResult {
  batchId: string;
  limits: BatchLimits;
}

export const NOTIFY_EVENTS = [
  'batch.finished',
  'batch.paused',
  'batch.resumed',
  'batch.threshold_exceeded',
  'reconcile.drift',
] as const;
export type NotifyEventName = (typeof NOTIFY_EVENTS)[number];

export interface NotifyOptions {
  urls: string[];
  /** How long one event may take to deliver to one URL, retries included, in milliseconds. */
  timeoutMs: number;
}
