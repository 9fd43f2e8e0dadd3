/**
 * Each recording-system fault ends as it must, with the consistency invariant holding after
 * every batch: drops and corruption are caught by verification and resent, rejections are
 * rolled back without a resend, persistent 5xx ends rolled back after the resend threshold.
 */
import { describe, expect } from 'vitest';
import type { Ledger } from '../../src/ledger/port';
import { TRANSFER_PATHS } from '../helpers/harness';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

async function eventsOf(ledger: Ledger, batchId: string) {
  const out: { interaction: string; kind: string; detail: Record<string, unknown> }[] = [];
  for (const row of await ledger.listInteractions(batchId)) {
    for (const e of await ledger.listEvents(row.interaction_id)) {
      out.push({ interaction: row.interaction_id, kind: e.kind, detail: e.detail ? JSON.parse(e.detail) : {} });
    }
  }
  return out;
}

describe.each(TRANSFER_PATHS)('recording-system faults ($path)', ({ localSendMaxBytes }) => {
  it('a silent drop is caught by the missing-file rule and resent until recorded', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { dropRate: 0.3, seed: 11 } });
    const items = await h.makeFiles(24, 1024, 6);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 12, maxResends: 12 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(24);
    expect(result.resends).toBeGreaterThan(0);
    const events = await eventsOf(h.ledger, batchId);
    const missing = events.filter((e) => e.kind === 'VERIFY_FAILED' && e.detail.rule === 'missing');
    expect(missing.length).toBe(result.resends);
    expect(h.simulator.stats().faults.drop).toBe(missing.length);
    expect((await h.consistency(batchId, 12)).drifts).toEqual([]);
  });

  it('corruption fails the checksum rule, the bad copy is replaced, and the file is recorded', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { corruptRate: 0.3, seed: 5 } });
    const items = await h.makeFiles(24, 2048, 6);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 12, maxResends: 12 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(24);
    const events = await eventsOf(h.ledger, batchId);
    const checksum = events.filter((e) => e.kind === 'VERIFY_FAILED' && e.detail.rule === 'checksum');
    expect(checksum.length).toBeGreaterThan(0);
    expect(checksum.length).toBe(h.simulator.stats().faults.corrupt);
    // Every file the recording system holds carries the source's bytes.
    const held = await h.targets.get('default').list({ limit: 1000 });
    const rows = await h.ledger.latestInteractions(batchId);
    for (const row of rows) {
      expect(held.files.find((f) => f.orderId === row.order_id && f.fileName === row.file_name)?.sha256).toBe(
        row.sha256,
      );
    }
    expect((await h.consistency(batchId, 12)).drifts).toEqual([]);
  });

  it('a rejection is rolled back with no resend', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { rejectRate: 1 } });
    const items = await h.makeFiles(6, 512, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 6, maxResends: 3 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED_WITH_FAILURES');
    expect(result.rolledBack).toBe(6);
    expect(result.resends).toBe(0);
    expect(result.failures.every((f) => f.reason.startsWith('Rejected'))).toBe(true);
    const rollbacks = await h.ledger.listRollbacks(batchId);
    expect(rollbacks.map((r) => r.status)).toEqual(Array(6).fill('DONE'));
    expect(h.simulator.stats().requests.PUT).toBe(6);
    expect((await h.targets.get('default').list()).files).toEqual([]);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('persistent 5xx ends ROLLED_BACK with resends equal to the threshold', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { failRate: 1, faultMethods: ['PUT'] } });
    const items = await h.makeFiles(3, 512, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3, maxResends: 2 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED_WITH_FAILURES');
    expect(result.rolledBack).toBe(3);
    for (const row of await h.ledger.latestInteractions(batchId)) {
      expect(row.status).toBe('ROLLED_BACK');
      expect(row.resends).toBe(2);
    }
    expect((await h.ledger.listRollbacks(batchId)).every((r) => r.status === 'DONE')).toBe(true);
    expect((await h.consistency(batchId, 2)).drifts).toEqual([]);
  });

  it('a receipt that cannot be read leaves the send unproven: it is resent, not failed', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { failRate: 1, faultMethods: ['GET'] } });
    const items = await h.makeFiles(2, 512, 2);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, maxResends: 10, outagePauseAfter: 0 });
    const ledger = h.ledger;
    await waitFor('a resend after a failed verification', async () =>
      (await eventsOf(ledger, batchId)).some(
        (e) => e.kind === 'RESEND_QUEUED' && String(e.detail.reason).startsWith('verification could not run'),
      ),
    );
    h.simulator.setFaults({ failRate: 0 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(2);
    expect((await h.consistency(batchId, 10)).drifts).toEqual([]);
    // A send whose receipt could not be read has its SENT event all the same.
    const events = await eventsOf(ledger, batchId);
    const unproven = events.filter(
      (e) => e.kind === 'RESEND_QUEUED' && String(e.detail.reason).startsWith('verification could not run'),
    );
    expect(unproven.length).toBeGreaterThan(0);
    for (const e of unproven) {
      const sent = events.filter((s) => s.kind === 'SENT' && s.interaction === e.interaction);
      expect(sent.map((s) => s.detail.resend)).toContain(Number(e.detail.resends) - 1);
    }
  }, 180_000);

  it('a rollback that cannot reach the recording system is recorded as FAILED and reported', async ({ harness }) => {
    const h = await harness({ policy: { localSendMaxBytes }, simulator: { rejectRate: 1, latencyMs: 300 } });
    const items = await h.makeFiles(2, 512, 2);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, maxResends: 0 });
    // Once the first rejection is seen, take the recording system down for rollbacks too.
    const deadline = Date.now() + 30_000;
    while (h.simulator.stats().faults.reject === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    h.simulator.setFaults({ failRate: 1 });
    const result = await handle.result();
    expect(result.rollbackFailed + result.rolledBack).toBe(2);
    expect(result.rollbackFailed).toBeGreaterThan(0);
    const failed = (await h.ledger.listRollbacks(batchId)).filter((r) => r.status === 'FAILED');
    expect(failed.length).toBe(result.rollbackFailed);
    h.simulator.setFaults({ failRate: 0, rejectRate: 0 });
    const report = await h.consistency(batchId, 0);
    expect(report.drifts).toEqual([]);
    expect(report.needsAttention.length).toBe(result.rollbackFailed);
  }, 180_000);
});
