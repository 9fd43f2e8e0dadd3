/**
 * A worker process killed mid-batch (SIGKILL, no goodbye) and a new one started: the batch
 * completes, every file is recorded once, nothing is lost or duplicated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import type { Harness } from '../helpers/harness';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';

function spawnWorker(h: Harness): ChildProcess {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), 'worker'], {
    env: {
      ...process.env,
      // The stack's server, task queue, ledger, recording system and payload keys.
      ...h.env,
      IMAGE_SYNC_LOG_LEVEL: 'WARN',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.on('exit', (code, signal) => {
    if (code && signal !== 'SIGKILL') console.error(`worker exited ${code}: ${err}`);
  });
  return child;
}

describe('worker restarts', () => {
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('a worker killed mid-batch and a new one started lose and duplicate nothing', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 250 } });
    await h.stopWorker();
    const first = spawnWorker(h);
    children.push(first);
    const items = await h.makeFiles(30, 8192, 10);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 10 });

    const ledger = h.ledger;
    const recordedCount = async () => (await ledger.batchCounts(batchId)).files.RECORDED ?? 0;
    await waitFor('the first worker to record five files', async () => (await recordedCount()) >= 5);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const recordedAtKill = await recordedCount();
    expect(recordedAtKill).toBeLessThan(30);

    const second = spawnWorker(h);
    children.push(second);
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(30);

    const rows = await ledger.listInteractions(batchId);
    expect(rows).toHaveLength(30); // one interaction per file: the restart opened none twice
    const held = await h.targets.get('default').list({ limit: 1000 });
    expect(held.files).toHaveLength(30);
    for (const row of rows) {
      const receipt = held.files.find((f) => f.orderId === row.order_id && f.fileName === row.file_name);
      expect(receipt?.idempotencyKey).toBe(row.interaction_id);
    }
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  }, 240_000);
});
