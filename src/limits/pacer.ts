/**
 * Pacing of sends and verifications under a batch's rate limits, on every worker at once.
 *
 * The limits live in the ledger (ledger/queries/rate-limits.ts), one row per scope: the batch's bytes and
 * requests, and each target's within the batch. Before each request to a recording system a
 * worker reserves one request; before each upload, the upload's bytes, as one stretch of time at
 * the slowest rate that applies. Both are one statement on the shared row, then a wait for the
 * slot. Within its stretch an upload streams from disk in pieces of a twentieth of a second, each
 * sent on time, so the limit holds over any second. A changed limit applies to the next
 * reservation: uploads already given their stretch keep it.
 */
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { BatchLimits, RateLimit } from '../shared';
import type { Ledger, ScopeLimit } from '../ledger/port';

export type Unit = 'bytes' | 'requests';

/** The ledger scope of one limit: the batch's own, or one target's within the batch. */
export function limitScope(batchId: string, unit: Unit, target?: string): string {
  return target === undefined ? `batch/${batchId}/${unit}` : `batch/${batchId}/target/${target}/${unit}`;
}

/** Every scope row of a batch's limits; a scope without a limit gets 0 (lifted). */
export function scopeLimits(batchId: string, limits: BatchLimits): ScopeLimit[] {
  const rows = (limit: RateLimit, target?: string): ScopeLimit[] => [
    { scope: limitScope(batchId, 'bytes', target), perSecond: limit.maxBytesPerSecond ?? 0 },
    { scope: limitScope(batchId, 'requests', target), perSecond: limit.maxRequestsPerSecond ?? 0 },
  ];
  return [...rows(limits.batch), ...Object.entries(limits.targets).flatMap(([target, limit]) => rows(limit, target))];
}

export interface Pacer {
  /** Waits until one more request to `target` fits the batch's limits. */
  request(batchId: string, target: string, signal: AbortSignal): Promise<void>;
  /**
   * Waits until an upload of `size` bytes may start under the batch's byte limits, and returns
   * how its body is paced within its share; undefined when no byte limit applies. Called before
   * the request opens, so the wait never counts against the request's timeout.
   */
  upload(
    batchId: string,
    target: string,
    size: number,
    signal: AbortSignal,
  ): Promise<((source: Readable) => Readable) | undefined>;
}

/** Pieces of an upload body are about this share of a second at its rate. */
const PIECES_PER_SECOND = 20;
const MIN_PIECE = 1024;

/** Waits until `at` (ms since epoch), or rejects when `signal` aborts. */
async function until(at: number, signal: AbortSignal): Promise<void> {
  const wait = at - Date.now();
  if (wait > 0) await delay(wait, undefined, { signal });
}

/**
 * The body of one upload spread evenly over its share: piece by piece, each sent when the bytes
 * before it have had their time at `perSecond`.
 */
function spread(source: Readable, perSecond: number, signal: AbortSignal): Readable {
  const piece = Math.max(MIN_PIECE, Math.floor(perSecond / PIECES_PER_SECOND));
  async function* paced(): AsyncGenerator<Buffer> {
    const start = Date.now();
    let sent = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (let offset = 0; offset < chunk.length; offset += piece) {
        await until(start + (sent * 1000) / perSecond, signal);
        const part = chunk.subarray(offset, offset + piece);
        sent += part.length;
        yield part;
      }
    }
  }
  return Readable.from(paced(), { objectMode: false });
}

/** A pacer over the ledger's shared limits. */
export function ledgerPacer(ledger: Pick<Ledger, 'reserveRate'>): Pacer {
  return {
    async request(batchId, target, signal) {
      const scopes = [limitScope(batchId, 'requests'), limitScope(batchId, 'requests', target)];
      const reservation = await ledger.reserveRate(scopes, 1);
      if (reservation) await until(reservation.startAtMs, signal);
    },

    async upload(batchId, target, size, signal) {
      // One reservation per upload: its share is one stretch of time, so a request, once open,
      // never waits on other uploads' shares.
      const scopes = [limitScope(batchId, 'bytes'), limitScope(batchId, 'bytes', target)];
      const reservation = await ledger.reserveRate(scopes, Math.max(1, size));
      if (!reservation) return undefined;
      await until(reservation.startAtMs, signal);
      return (source) => spread(source, reservation.slowestPerSecond, signal);
    },
  };
}
