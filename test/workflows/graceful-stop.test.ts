/**
 * Graceful stop of a worker process (`image-sync worker`): SIGTERM while uploads are in flight
 * (the simulator holds every request for a while) lets them finish, the worker exits 0, and
 * once another worker takes over every file ends RECORDED with one PUT each, no resend and no
 * rollback. A second signal stops the worker at once.
 */
import { afterEach, describe, expect } from 'vitest';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';
import { cliEnv, spawnCli, spawnPollingWorker, stopAllClis, tempDir } from '../cli/helpers';

const LATENCY_MS = 2500;

describe('graceful stop', () => {
  afterEach(async () => {
    await stopAllClis();
  });

  it('SIGTERM during uploads: they finish, exit 0, every file RECORDED once, no resend, no rollback', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { latencyMs: LATENCY_MS } });
    await h.stopWorker();
    const first = await spawnPollingWorker(h.env, { IMAGE_SYNC_SHUTDOWN_GRACE_MS: '20000' });
    const files = 6;
    const items = await h.makeFiles(files, 64 * 1024, 3);
    const { batchId, handle } = await h.start(items, { maxConcurrency: files });

    const sim = h.simulator;
    await waitFor('every upload to be in flight', () => (sim.stats().requests.PUT ?? 0) >= files, 60_000);
    const putsAtSignal = sim.stats().requests.PUT ?? 0;
    const answeredAtSignal = sim.stats().responses['201'] ?? 0;
    expect(answeredAtSignal).toBeLessThan(putsAtSignal); // uploads really are in flight
    const t0 = Date.now();
    first.signal('SIGTERM');
    await first.waitForStdout(/SIGTERM, stopping/, 10_000);
    const exit = await first.exit(30_000);
    const stopMs = Date.now() - t0;
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain('Worker stopped');
    // The uploads in flight at the signal were answered before the worker left.
    expect(sim.stats().responses['201'] ?? 0).toBeGreaterThanOrEqual(putsAtSignal);
    console.info(`graceful stop with ${putsAtSignal} uploads in flight took ${stopMs} ms`);

    const second = await spawnPollingWorker(h.env);
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(files);
    expect(result.resends).toBe(0);

    const latest = await h.ledger.latestInteractions(batchId);
    expect(latest).toHaveLength(files);
    for (const row of latest) expect(row).toMatchObject({ status: 'RECORDED', resends: 0 });
    expect(await h.ledger.listInteractions(batchId)).toHaveLength(files);
    expect(await h.ledger.listRollbacks(batchId)).toEqual([]);
    for (const row of latest) {
      const kinds = (await h.ledger.listEvents(row.interaction_id)).map((e) => e.kind);
      expect(
        kinds.filter((k) => /RESEND|ROLLBACK/.test(k)),
        `${row.file_name}: ${kinds.join(',')}`,
      ).toEqual([]);
    }
    expect(sim.stats().requests.PUT).toBe(files); // each file sent once
    sim.setFaults({ latencyMs: 0 });
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
    second.signal('SIGTERM');
    expect((await second.exit(30_000)).code).toBe(0);
  }, 240_000);

  it('a second signal stops the worker at once (exit 143 after SIGTERM)', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 20_000 } });
    await h.stopWorker();
    const worker = await spawnPollingWorker(h.env, { IMAGE_SYNC_SHUTDOWN_GRACE_MS: '60000' });
    const items = await h.makeFiles(2, 1024, 2);
    await h.start(items, { maxConcurrency: 2 });
    const sim = h.simulator;
    await waitFor('an upload in flight', () => (sim.stats().requests.PUT ?? 0) >= 1, 60_000);
    worker.signal('SIGTERM');
    await worker.waitForStdout(/SIGTERM, stopping/, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(worker.running).toBe(true); // still waiting for the held upload
    const t0 = Date.now();
    worker.signal('SIGTERM');
    const exit = await worker.exit(10_000);
    expect(exit.code).toBe(143);
    expect(exit.stdout).toMatch(/second SIGTERM, stopping at once \(exit code 143\)/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  }, 120_000);

  it('SIGTERM while the worker is still starting: it stops once started, exit 0', async ({ harness }) => {
    const h = await harness();
    await h.stopWorker();
    const home = await tempDir('graceful-home');
    const worker = spawnCli(['worker'], {
      env: cliEnv(home, h.env),
    });
    // Once it handles stop signals, and before it polls (from the sources it bundles its
    // workflows for seconds first).
    await worker.waitForStdout(/Worker starting: stop signals are handled/, 60_000);
    expect(worker.stdout).not.toContain('Worker polling');
    worker.signal('SIGTERM');
    const exit = await worker.exit(90_000);
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain('Worker: SIGTERM, stopping');
    expect(exit.stdout).toContain('Worker stopped');
  }, 120_000);
});
