/**
 * The shared rate limits and the notification record, on every backend: what two ledger
 * connections (two workers) get when they reserve from one scope at once, and how a changed or
 * lifted limit applies to the next reservation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/ledger';
import { ledgerPacer, limitScope, scopeLimits } from '../../src/limits/pacer';
import { BACKENDS } from './backends';

for (const backend of BACKENDS) {
  describe.skipIf(backend.skipped)(`rate limits and notifications on ${backend.name}`, () => {
    let a: Ledger;
    let b: Ledger;
    beforeAll(async () => {
      await backend.check();
      const url = await backend.freshUrl();
      a = await openLedger(url);
      b = await openLedger(url);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend.cleanup();
    });

    it('gives each reservation its own stretch, across two connections, at the rate set', async () => {
      const scope = limitScope('B1', 'bytes');
      await a.setRateLimits('B1', [{ scope, perSecond: 1000 }]);
      const t0 = Date.now();
      // 40 reservations of 100 units from two connections at once: 4 seconds of slots at 1000/s.
      const reservations = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).reserveRate([scope, 'absent-scope'], 100)),
      );
      const starts = reservations.map((r) => r!.startAtMs).sort((x, y) => x - y);
      for (let i = 1; i < starts.length; i += 1) expect(starts[i]! - starts[i - 1]!).toBeCloseTo(100, 0);
      expect(starts[0]! - t0).toBeLessThan(500);
      expect(reservations.every((r) => r!.slowestPerSecond === 1000)).toBe(true);
    });

    it('applies a changed limit to the next reservation, gives back slots reserved far ahead, and lifts with 0', async () => {
      const scope = limitScope('B2', 'requests', 'east');
      await a.setRateLimits('B2', [{ scope, perSecond: 1 }]);
      for (let i = 0; i < 10; i += 1) await a.reserveRate([scope], 1); // ten seconds booked at 1/s
      await b.setRateLimits('B2', [{ scope, perSecond: 100 }]);
      const next = await a.reserveRate([scope], 1);
      expect(next!.startAtMs - Date.now()).toBeLessThan(200);
      expect(next!.slowestPerSecond).toBe(100);
      await b.setRateLimits('B2', [{ scope, perSecond: 0 }]);
      expect(await a.reserveRate([scope], 1)).toBeUndefined();
    });

    it("waits for the slowest of the scopes, and drops an ended batch's rows", async () => {
      await a.setRateLimits(
        'B3',
        scopeLimits('B3', { batch: { maxBytesPerSecond: 10_000 }, targets: { t: { maxBytesPerSecond: 1_000 } } }),
      );
      await a.reserveRate([limitScope('B3', 'bytes'), limitScope('B3', 'bytes', 't')], 1_000);
      const second = await a.reserveRate([limitScope('B3', 'bytes'), limitScope('B3', 'bytes', 't')], 1_000);
      expect(second!.slowestPerSecond).toBe(1_000);
      expect(second!.startAtMs - Date.now()).toBeGreaterThan(800);
      await a.clearRateLimits('B3');
      expect(await a.reserveRate([limitScope('B3', 'bytes', 't')], 1)).toBeUndefined();
    });

    it('paces requests and an upload by its reservation', async () => {
      const pacer = ledgerPacer(a);
      await a.setRateLimits('B4', [
        { scope: limitScope('B4', 'requests'), perSecond: 20 },
        { scope: limitScope('B4', 'bytes', 'default'), perSecond: 50_000 },
      ]);
      const signal = new AbortController().signal;
      const t0 = Date.now();
      for (let i = 0; i < 10; i += 1) await pacer.request('B4', 'default', signal);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // nine gaps of 50 ms
      const pace = await pacer.upload('B4', 'default', 25_000, signal);
      expect(pace).toBeDefined();
      const { Readable } = await import('node:stream');
      const started = Date.now();
      let bytes = 0;
      for await (const chunk of pace!(Readable.from([Buffer.alloc(25_000)]))) bytes += (chunk as Buffer).length;
      expect(bytes).toBe(25_000);
      // Spread over its half second, in pieces of a twentieth of a second.
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      expect(await pacer.upload('B4', 'elsewhere', 10, signal)).toBeUndefined();
    });

    it('keeps one notification row per event and URL: later attempts replace it, a first-only note does not', async () => {
      const n = { eventId: 'e1', batchId: 'B5', event: 'batch.finished', url: 'http://r/hook' } as const;
      await a.recordNotification({ ...n, outcome: 'FAILED', attempts: 1, error: 'answered 500' });
      await a.recordNotification({ ...n, outcome: 'DELIVERED', attempts: 2 });
      await a.recordNotification({ ...n, outcome: 'FAILED', attempts: 0, error: 'timed out' }, true);
      await a.recordNotification({ ...n, url: 'http://other/hook', outcome: 'FAILED', attempts: 0, error: 'x' }, true);
      const rows = await b.listNotifications('B5');
      expect(rows.map((r) => [r.url, r.outcome, r.attempts, r.error])).toEqual([
        ['http://r/hook', 'DELIVERED', 2, null],
        ['http://other/hook', 'FAILED', 0, 'x'],
      ]);
    });
  });
}
