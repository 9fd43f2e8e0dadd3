/**
 * A worker process killed (SIGKILL) while the intake delivers files, a submission made while no
 * worker runs, and a new worker started: nothing accepted is lost, nothing is sent twice, and
 * the invariant holds for every submitted file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect } from 'vitest';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import type { Harness } from '../helpers/harness';
import { it } from '../helpers/fixture';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { intakeOn, submission } from './intake-backend-helpers';

function spawnWorker(h: Harness): ChildProcess {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'image-sync.js'), 'worker'], {
    env: { ...process.env, ...h.env, IMAGE_SYNC_LOG_LEVEL: 'WARN' },
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

describe('intake and worker restarts', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('a worker killed mid-flow loses and duplicates nothing the intake accepted', async ({ harness }) => {
    const h = await harness({ simulator: { latencyMs: 250 } });
    await h.stopWorker();
    const first = spawnWorker(h);
    children.push(first);
    // Long enough for a worker process that bundles the workflows as it starts.
    const { backend, batchId } = intakeOn(h, {
      submitTimeoutMs: 150_000,
      policy: { resendBackoffMs: 50, maxConcurrency: 4 },
    });
    const made = await h.makeFiles(24, 8192, 12);
    const one = made.slice(0, 12).map((i) => ({ ...i, orderId: 'ord-k1' }));
    const two = made.slice(12).map((i) => ({ ...i, orderId: 'ord-k2' }));
    expect(await backend.submit(submission('ord-k1', one))).toMatchObject({ kind: 'accepted', replayed: false });

    const recorded = async (order: string) =>
      (await backend.orderStatus(order))?.files.filter((f) => f.state === 'RECORDED').length ?? 0;
    await waitFor('the first worker to record three files', async () => (await recorded('ord-k1')) >= 3, 180_000);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await recorded('ord-k1')).toBeLessThan(12);

    // Submitted while no worker runs: answered once a worker has taken it into the intake.
    const sub2 = submission('ord-k2', two);
    const pending = backend.submit(sub2);
    const second = spawnWorker(h);
    children.push(second);
    expect(await pending).toMatchObject({ kind: 'accepted' });
    // The platform retries (it did not trust the slow answer): nothing new.
    expect(await backend.submit(sub2)).toMatchObject({ kind: 'accepted', replayed: true });

    await waitFor(
      'every file recorded',
      async () => (await recorded('ord-k1')) + (await recorded('ord-k2')) === 24,
      240_000,
    );
    const rows = await h.ledger.listInteractions(batchId);
    expect(rows).toHaveLength(24); // one interaction per file: the restart opened none twice
    await expectOneTruth(h, [batchId], [...one, ...two], { maxResends: 3 });
  }, 420_000);
});
