/**
 * The batch's rate limits as plain functions: whether files must be paced, what a set-limits
 * request may change, and the limits in words. No Temporal calls here (see batch-state.ts).
 */
import type { BatchCarry, BatchLimits, LimitsChange, RateLimit } from '../shared';

const FIELDS = ['maxBytesPerSecond', 'maxRequestsPerSecond'] as const;

function limited(limit: RateLimit | undefined): boolean {
  return FIELDS.some((f) => (limit?.[f] ?? 0) > 0);
}

/** Whether any limit is in force: its files are then sent by the paced, heartbeating activity. */
export function isPaced(limits: BatchLimits | undefined): boolean {
  return limits !== undefined && (limited(limits.batch) || Object.values(limits.targets).some(limited));
}

/** Why a set-limits request cannot apply; undefined when it can. */
export function whyNotSetLimits(c: BatchCarry, change: unknown): string | undefined {
  if (c.cancelRequested) return 'the batch is cancelled';
  if (typeof change !== 'object' || change === null) return 'give the limits to change';
  const { target, ...values } = change as LimitsChange;
  const given = FIELDS.filter((f) => values[f] !== undefined);
  if (given.length === 0) return 'give --max-bytes-per-second or --max-requests-per-second';
  for (const f of given) {
    const v = values[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      return `${f} must be a number of 0 (no limit) or more, got ${String(v)}`;
  }
  if (target !== undefined) {
    const known = Object.keys(c.limits?.targets ?? {});
    if (!known.includes(target))
      return `unknown target "${String(target)}" (this batch sends to: ${known.join(', ') || 'no named target'})`;
  }
  return undefined;
}

/** Applies a set-limits request (validated) to the carry; returns the limits now in force. */
export function changeLimits(c: BatchCarry, change: LimitsChange): BatchLimits {
  const limits: BatchLimits = c.limits ?? { batch: {}, targets: {} };
  const scope: RateLimit =
    change.target === undefined ? { ...limits.batch } : { ...(limits.targets[change.target] ?? {}) };
  for (const f of FIELDS) {
    const v = change[f];
    if (v === undefined) continue;
    if (v > 0) scope[f] = v;
    else delete scope[f];
  }
  c.limits =
    change.target === undefined
      ? { ...limits, batch: scope }
      : { ...limits, targets: { ...limits.targets, [change.target]: scope } };
  return c.limits;
}

function words(limit: RateLimit): string {
  const parts: string[] = [];
  if (limit.maxBytesPerSecond) parts.push(`${limit.maxBytesPerSecond} bytes/s`);
  if (limit.maxRequestsPerSecond) parts.push(`${limit.maxRequestsPerSecond} requests/s`);
  return parts.join(', ');
}

/** The limits in force, one line; undefined when there are none. */
export function describeLimits(limits: BatchLimits | undefined): string | undefined {
  if (!isPaced(limits)) return undefined;
  const parts: string[] = [];
  if (limited(limits!.batch)) parts.push(`batch ${words(limits!.batch)}`);
  for (const [name, limit] of Object.entries(limits!.targets))
    if (limited(limit)) parts.push(`${name} ${words(limit)}`);
  return `limits: ${parts.join(' · ')}`;
}
