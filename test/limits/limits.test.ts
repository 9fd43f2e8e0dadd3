/**
 * Rate limits held across workers, measured where the bytes arrive: a TCP proxy in front of the
 * simulator notes when each byte and each request came in. Two workers, each with a ledger
 * connection of its own, share every batch.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { fileWorkflowId, progressQuery, setLimitsUpdate } from '../../src/shared';
import { cliEnv, spawnCli, stopAllClis } from '../cli/helpers';
import { startHarness, TEST_ENCRYPTION_KEYS_ENV, TEST_TOKEN, type Harness } from '../helpers/harness';
import { startMeterProxy, type MeterProxy } from '../helpers/meter-proxy';
import { waitFor } from '../helpers/wait';

describe('rate limits', () => {
  let h: Harness | undefined;
  let proxy: MeterProxy | undefined;
  afterEach(async () => {
    await stopAllClis();
    await h?.close();
    await proxy?.close();
    h = proxy = undefined;
  });

  /** The harness's worker, and with `workers: 2` a worker process beside it, both sending through the proxy. */
  async function stack(
    opts: Parameters<typeof startHarness>[0] & { workers?: 1 | 2 } = {},
  ): Promise<{ h: Harness; proxy: MeterProxy }> {
    proxy = await startMeterProxy();
    h = await startHarness({ workerUrl: proxy.url, ...opts });
    proxy.forwardTo(h.simulator.port);
    if (opts.workers === 2) {
      const second = spawnCli(['worker'], {
        env: cliEnv(h.workDir, {
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
          RECORDING_SYSTEM_URL: proxy.url,
          RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
          IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
          IMAGE_SYNC_LOG_LEVEL: 'WARN',
          IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV,
        }),
      });
      await second.waitForStdout(/Worker polling task queue/, 60_000);
    }
    return { h, proxy };
  }

  /** From the first byte that arrived to the last. */
  function span(p: MeterProxy): { from: number; to: number } {
    return { from: p.arrivals[0]!.at, to: p.arrivals.at(-1)!.at };
  }

  it('holds a batch to --max-bytes-per-second within 10% over more than 10 seconds, with two workers', async () => {
    const { h, proxy } = await stack({ workers: 2 });
    const limit = 100_000;
    const items = await h.makeFiles(24, 50_000, 6);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 8 }, undefined, {
      limits: { maxBytesPerSecond: limit },
    });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(24);

    const { from, to } = span(proxy);
    const seconds = (to - from) / 1000;
    const { bytesPerSecond } = proxy.rate(from, to);
    console.log(`batch limit ${limit} B/s: measured ${Math.round(bytesPerSecond)} B/s over ${seconds.toFixed(1)} s`);
    expect(seconds).toBeGreaterThanOrEqual(10);
    expect(bytesPerSecond).toBeGreaterThan(limit * 0.9);
    expect(bytesPerSecond).toBeLessThan(limit * 1.1);
    // Both workers sent: the limit held across them, not within one.
    const senders = new Set<string>();
    for (const item of items) {
      const history = await h.client.workflow
        .getHandle(fileWorkflowId(batchId, item.orderId, item.fileName))
        .fetchHistory();
      for (const e of history.events ?? []) {
        const identity = e.activityTaskStartedEventAttributes?.identity;
        if (identity) senders.add(identity);
      }
    }
    expect(senders.size).toBe(2);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('applies a limit lowered mid-batch within a few seconds, and lifts it with 0', async () => {
    const { h, proxy } = await stack({ workers: 2 });
    const items = await h.makeFiles(40, 50_000, 8);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 8 }, undefined, {
      limits: { maxBytesPerSecond: 200_000 },
    });
    await waitFor('the batch to be sending', () => proxy.arrivals.length > 0 && proxy.arrivals);
    await new Promise((r) => setTimeout(r, 3_000));
    const changedAt = Date.now();
    const changed = await handle.executeUpdate(setLimitsUpdate, { args: [{ maxBytesPerSecond: 50_000 }] });
    expect(changed.limits.batch.maxBytesPerSecond).toBe(50_000);
    await new Promise((r) => setTimeout(r, 8_000));

    const before = proxy.rate(changedAt - 3_000, changedAt).bytesPerSecond;
    const after = proxy.rate(changedAt + 2_000, changedAt + 8_000).bytesPerSecond;
    console.log(`before ${Math.round(before)} B/s (limit 200000), after ${Math.round(after)} B/s (limit 50000)`);
    expect(before).toBeGreaterThan(150_000);
    expect(after).toBeLessThan(50_000 * 1.15);
    expect(after).toBeGreaterThan(50_000 * 0.7);

    const lifted = await handle.executeUpdate(setLimitsUpdate, { args: [{ maxBytesPerSecond: 0 }] });
    expect(lifted.limits.batch.maxBytesPerSecond).toBeUndefined();
    const result = await handle.result();
    expect(result.recorded).toBe(40);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it("holds a target's maxRequestsPerSecond (sends and verifications) from the targets file", async () => {
    const { h, proxy } = await stack({ targetLimits: { default: { maxRequestsPerSecond: 10 } } });
    const items = await h.makeFiles(40, 256, 10);
    const { handle } = await h.start(items, { maxConcurrency: 16 });
    const result = await handle.result();
    expect(result.recorded).toBe(40);
    const { from, to } = span(proxy);
    const { requestsPerSecond } = proxy.rate(from, to);
    // 40 sends and 40 verifications: about 8 seconds at 10 a second.
    console.log(`target limit 10 requests/s: measured ${requestsPerSecond.toFixed(2)} over ${(to - from) / 1000} s`);
    expect(proxy.arrivals.reduce((n, a) => n + a.requests, 0)).toBeGreaterThanOrEqual(80);
    expect(requestsPerSecond).toBeLessThan(11);
    expect(requestsPerSecond).toBeGreaterThan(7);
  });

  it('refuses a set-limits request that cannot apply, before it enters history', async () => {
    const { h } = await stack({ simulator: { latencyMs: 300 } });
    const items = await h.makeFiles(6, 256, 6);
    const { handle } = await h.start(items, { maxConcurrency: 1 });
    await waitFor('a file started', async () => (await handle.query(progressQuery)).started >= 1);
    await expect(
      handle.executeUpdate(setLimitsUpdate, { args: [{ target: 'nowhere', maxBytesPerSecond: 10 }] }),
    ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/unknown target "nowhere"/) } });
    await expect(handle.executeUpdate(setLimitsUpdate, { args: [{ maxBytesPerSecond: -1 }] })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/0 \(no limit\) or more/) },
    });
    await expect(handle.executeUpdate(setLimitsUpdate, { args: [{}] })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/give --max-bytes-per-second/) },
    });
    const ok = await handle.executeUpdate(setLimitsUpdate, { args: [{ target: 'default', maxRequestsPerSecond: 50 }] });
    expect(ok.limits.targets.default).toEqual({ maxRequestsPerSecond: 50 });
    expect((await handle.result()).recorded).toBe(6);
    const history = await handle.fetchHistory();
    const updates = (history.events ?? [])
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name)
      .filter((name) => name !== undefined);
    expect(updates).toEqual(['setLimits']);
  });
});
