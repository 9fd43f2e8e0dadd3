/**
 * Batch notifications against real local receivers: each event once, with the documented body
 * and a valid signature; a receiver that answers 500 three times gets the event on the fourth
 * try; one that never answers costs the batch at most the notification's own timeout, and the
 * failure shows in the details and the ledger.
 */
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { signBody } from '../../src/activities';
import { pauseUpdate, progressQuery, resumeUpdate, type NotifyBody } from '../../src/shared';
import { cliEnv, runCli, stopAllClis } from '../cli/helpers';
import { startHarness, TEST_TOKEN, type Harness } from '../helpers/harness';
import { startReceiver, type Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait';

const SECRET = 'notify-secret-for-tests-51c2';

describe('notifications', () => {
  let h: Harness | undefined;
  const receivers: Receiver[] = [];
  afterEach(async () => {
    await stopAllClis();
    await h?.close();
    for (const r of receivers.splice(0)) await r.close();
    h = undefined;
  });
  const receiver = async (...args: Parameters<typeof startReceiver>) => {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  };

  it('sends paused, resumed, threshold_exceeded and finished once each, with the body and a valid signature', async () => {
    h = await startHarness({ notifySecret: SECRET, simulator: { latencyMs: 200 } });
    const r = await receiver();
    const items = await h.makeFiles(6, 512, 6);
    // The last file's source is gone: it is rolled back, and with no failure tolerated the
    // batch passes its threshold.
    items.push({ ...items[0]!, fileName: 'gone.png', sourcePath: path.join(h.workDir, 'no-such-file.png') });
    const { batchId, handle } = await h.start(items, { maxConcurrency: 1, toleratedFailurePercent: 0 }, undefined, {
      notify: { urls: [r.url], timeoutMs: 10_000 },
    });
    await waitFor('a file recorded', async () => (await handle.query(progressQuery)).recorded >= 1);
    await handle.executeUpdate(pauseUpdate);
    await waitFor('the paused event', () => r.received.length >= 1);
    await handle.executeUpdate(resumeUpdate);
    const result = await handle.result();
    expect(result.state).toBe('FAILED');

    // Each event is its own delivery, so two sent at nearly the same time may arrive in either
    // order; `at` orders them.
    const events = r.received
      .map((x) => JSON.parse(x.body) as NotifyBody)
      .sort((a, b) => a.at.localeCompare(b.at) || (a.event === 'batch.finished' ? 1 : -1));
    expect(events.map((e) => e.event)).toEqual([
      'batch.paused',
      'batch.resumed',
      'batch.threshold_exceeded',
      'batch.finished',
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(4);
    for (const x of r.received) {
      const body = JSON.parse(x.body) as NotifyBody;
      expect(x.headers['content-type']).toBe('application/json');
      expect(x.headers['x-image-sync-signature']).toBe(signBody(SECRET, x.body));
      expect(x.headers['x-image-sync-event']).toBe(body.event);
      expect(x.headers['x-image-sync-delivery']).toBe(body.id);
    }
    const finished = events.at(-1)!;
    expect(finished).toMatchObject({
      event: 'batch.finished',
      batchId,
      state: 'FAILED',
      total: 7,
      recorded: result.recorded,
      rolledBack: 1,
      rollbackFailed: 0,
      cancelled: 0,
    });
    expect(new Date(finished.at).toISOString()).toBe(finished.at);
    expect(events[0]!.detail).toEqual({ by: 'operator' });
    expect(events[2]!.detail).toMatchObject({ failed: 1, toleratedFailurePercent: 0 });
    const rows = await h.ledger.listNotifications(batchId);
    expect(rows.map((x) => [x.event, x.outcome, x.attempts]).sort()).toEqual(
      events.map((e) => [e.event, 'DELIVERED', 1]).sort(),
    );
    expect(rows.every((x) => x.url.endsWith('/hooks/image-sync'))).toBe(true);
  });

  it('delivers to a receiver that answers 500 three times and then 200', async () => {
    h = await startHarness();
    const r = await receiver((n) => (n < 3 ? 500 : 200));
    const items = await h.makeFiles(3, 256, 3);
    const { batchId, handle } = await h.start(items, {}, undefined, { notify: { urls: [r.url], timeoutMs: 30_000 } });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(r.received).toHaveLength(4);
    const ids = new Set(r.received.map((x) => (JSON.parse(x.body) as NotifyBody).id));
    expect(ids.size).toBe(1); // the same event, retried
    // Unsigned without a secret.
    expect(r.received[0]!.headers['x-image-sync-signature']).toBeUndefined();
    const [row] = await h.ledger.listNotifications(batchId);
    expect(row).toMatchObject({ event: 'batch.finished', outcome: 'DELIVERED', attempts: 4 });
  });

  it('a receiver that never answers delays the end by at most the timeout; the failure is in the details and the ledger', async () => {
    h = await startHarness();
    const hung = await receiver(() => 'hang');
    const fine = await receiver();
    const items = await h.makeFiles(2, 256, 2);
    const timeoutMs = 3_000;
    const started = Date.now();
    const { batchId, handle } = await h.start(items, {}, undefined, {
      notify: { urls: [hung.url, fine.url], timeoutMs },
    });
    const result = await handle.result();
    const tookMs = Date.now() - started;
    expect(result.state).toBe('COMPLETED');
    expect(fine.received).toHaveLength(1);
    const finishedAt = fine.received[0]!.at;
    // The batch ended at most the notification's timeout (and a little bookkeeping) after the
    // event went out; it did wait for it.
    expect(Date.now() - finishedAt).toBeLessThan(timeoutMs + 2_000);
    expect(tookMs).toBeGreaterThanOrEqual(timeoutMs - 500);
    const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(currentDetails).toMatch(/notifications not delivered: 1 \(last: batch\.finished not delivered/);
    const rows = await h.ledger.listNotifications(batchId);
    expect(rows.map((x) => [x.url.endsWith(new URL(hung.url).pathname), x.outcome])).toContainEqual([true, 'FAILED']);
    expect(rows.find((x) => x.outcome === 'FAILED')!.error).toBeTruthy();
    expect(rows.filter((x) => x.outcome === 'DELIVERED')).toHaveLength(1);
  });

  it('a reconcile schedule made with --notify sends reconcile.drift once when a run finds drift', async () => {
    h = await startHarness({ notifySecret: SECRET });
    const r = await receiver();
    const items = await h.makeFiles(3, 256, 3);
    const { batchId, handle } = await h.start(items);
    expect((await handle.result()).state).toBe('COMPLETED');
    const env = cliEnv(h.workDir, {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
      IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
      RECORDING_SYSTEM_URL: h.simulator.url,
      RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
      IMAGE_SYNC_NOTIFY_TIMEOUT_MS: '10000',
    });
    const scheduleId = `drift-${batchId}`;
    const created = await runCli(
      ['schedule', 'create', '--reconcile', batchId, '--every', '1h', '--id', scheduleId, '--notify', r.url],
      { env, cwd: h.workDir },
    );
    expect(created.code, created.stderr).toBe(0);
    const schedule = h.client.schedule.getHandle(scheduleId);
    try {
      const gone = items[0]!;
      await h.targets.get('default').remove(gone.orderId, gone.fileName);
      await schedule.trigger();
      await waitFor('the drift event', () => r.received.length >= 1);
      await new Promise((res) => setTimeout(res, 1_000));
      expect(r.received).toHaveLength(1);
      const [x] = r.received;
      expect(x!.headers['x-image-sync-signature']).toBe(signBody(SECRET, x!.body));
      expect(JSON.parse(x!.body)).toMatchObject({
        event: 'reconcile.drift',
        batchId,
        state: 'COMPLETED',
        total: 3,
        recorded: 3,
        rolledBack: 0,
        rollbackFailed: 0,
        cancelled: 0,
        detail: { drifts: 1, byKind: { missing: 1 }, scheduleId },
      });
    } finally {
      await schedule.delete().catch(() => undefined);
    }
  });
});
