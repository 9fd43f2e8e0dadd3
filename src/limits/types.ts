/**
 * The types of rate limits and notifications, shared by the CLI, the activities and the workflows
 * (re-exported by shared.ts). No imports but types: the workflow bundle includes this module.
 */
import type { BatchTally } from '../shared';

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

/** The JSON document POSTed for one event. */
export interface NotifyBody extends BatchTally {
  /** Unique per event: a receiver that sees it twice (a retry after a lost answer) can drop the copy. */
  id: string;
  event: NotifyEventName;
  at: string;
  /** Why, for paused, resumed and threshold_exceeded; the drift counts for reconcile.drift. */
  detail?: Record<string, unknown>;
}
