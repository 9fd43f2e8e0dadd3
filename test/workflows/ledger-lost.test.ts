/**
 * A worker whose SQLite ledger cannot fsync its WAL (the disk fails under it) stops, exit 1, with
 * the reason, instead of going on with writes it cannot prove durable; another worker finishes
 * the batch, every file RECORDED and consistent.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect } from 'vitest';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';
import { PROJECT_ROOT, spawnPollingWorker, stopAllClis, tempDir } from '../cli/helpers';

const FSYNC_FAULT = pathToFileURL(path.join(PROJECT_ROOT, 'test', 'helpers', 'fsync-fault.mjs')).href;

describe('a ledger lost under the worker', () => {
  afterEach(async () => {
    await stopAllClis();
  });

  it('a failed fsync of the WAL stops the worker (exit 1, the reason said); the next worker finishes the batch', async ({
    harness,
  }) => {
    const h = await harness({ simulator: { latencyMs: 1500 } });
    await h.stopWorker();
    const marker = path.join(await tempDir('ledger-lost'), 'fsync-fails');
    const first = await spawnPollingWorker(h.env, {
      IMAGE_SYNC_SHUTDOWN_GRACE_MS: '5000',
      NODE_OPTIONS: `--import=${FSYNC_FAULT}`,
      IMAGE_SYNC_TEST_FSYNC_FAILS_WHILE: marker,
    });
    const files = 4;
    const items = await h.makeFiles(files, 2048, 2);
    const { batchId, handle } = await h.start(items, { maxConcurrency: files });

    const sim = h.simulator;
    await waitFor('uploads to be in flight', () => (sim.stats().requests.PUT ?? 0) >= 1, 60_000);
    await writeFile(marker, '');
    const exit = await first.exit(90_000);
    const output = exit.stdout + exit.stderr;
    expect(exit.code, output).toBe(1);
    expect(output).toMatch(/Worker stopping: ledger lost \(SQLite file [^)]*\): fsync of \S+-wal failed: EIO/);
    expect(output).toContain('restart it');
    await rm(marker);

    const second = await spawnPollingWorker(h.env);
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(files);
    const latest = await h.ledger.latestInteractions(batchId);
    expect(latest).toHaveLength(files);
    for (const row of latest) expect(row.status).toBe('RECORDED');
    sim.setFaults({ latencyMs: 0 });
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
    second.signal('SIGTERM');
    expect((await second.exit(30_000)).code).toBe(0);
  }, 240_000);
});
