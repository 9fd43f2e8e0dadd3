/**
 * `image-sync reconcile` as an operator runs it, one drift kind at a time: each batch runs on a
 * real worker (the shared dev server, a real simulator over HTTP, a SQLite ledger), the drift is
 * planted through the recording system's own HTTP API (or, for a stale copy, by changing the
 * source), reconcile names it and exits 4, `--repair` clears it the way that keeps the ledger's
 * story true, and a second reconcile exits 0.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { ConsistencyReport } from '../../src/consistency/invariant';
import type { RepairResult } from '../../src/consistency/repair';
import { ledgerSql } from '../../src/ledger/testing';
import type { InteractionRow } from '../../src/ledger/port';
import type { RecordingSystem } from '../../src/recording-system/port';
import type { BatchPolicy, BatchResult, SyncItem } from '../../src/shared';
import { startHarness, TEST_TOKEN, type Harness, TEST_ENCRYPTION_KEYS_ENV } from '../helpers/harness';
import { cliEnv, runCli, stopAllClis, type CliResult } from './helpers';

let h: Harness;
let rs: RecordingSystem;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  h = await startHarness();
  rs = h.targets.get('default');
  env = cliEnv(h.workDir, {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
    RECORDING_SYSTEM_URL: h.simulator.url,
    RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
    IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV,
  });
});

afterAll(async () => {
  await stopAllClis();
  await h?.close();
});

beforeEach(() => {
  h.simulator.setFaults({ rejectRate: 0, dropRate: 0 });
});

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function reconcile(...args: string[]): Promise<CliResult> {
  return runCli(['reconcile', ...args], { env, cwd: h.workDir, timeoutMs: 60_000 });
}

async function reconcileJson(batchId: string, ...args: string[]) {
  const res = await reconcile(batchId, '--json', ...args);
  return { code: res.code, stderr: res.stderr, report: JSON.parse(res.stdout) as ConsistencyReport };
}

async function repairJson(batchId: string, ...args: string[]) {
  const res = await reconcile(batchId, '--repair', '--json', ...args);
  return { code: res.code, stderr: res.stderr, result: JSON.parse(res.stdout) as RepairResult };
}

/** Files of `count` small distinct bodies under orders of their own, so batches never share a file. */
async function makeItems(count: number, perOrder = 2): Promise<SyncItem[]> {
  const tag = randomUUID().slice(0, 8);
  const items: SyncItem[] = [];
  for (let i = 0; i < count; i++) {
    const orderId = `ORD-${tag}-${Math.floor(i / perOrder)}`;
    const fileName = `scan-${i}.png`;
    const sourcePath = path.join(h.workDir, 'src', orderId, fileName);
    await mkdir(path.dirname(sourcePath), { recursive: true });
    await writeFile(sourcePath, `image ${tag} ${i} ${'x'.repeat(100 + i)}`);
    items.push({ orderId, fileName, sourcePath });
  }
  return items;
}

async function runBatch(
  items: SyncItem[],
  policy: Partial<BatchPolicy> = {},
): Promise<{ batchId: string; result: BatchResult }> {
  const { batchId, handle } = await h.start(items, policy);
  return { batchId, result: await handle.result() };
}

async function latest(batchId: string, item: SyncItem): Promise<InteractionRow> {
  const row = (await h.ledger.latestInteractions(batchId)).find(
    (r) => r.order_id === item.orderId && r.file_name === item.fileName,
  );
  if (!row) throw new Error(`no interaction for ${item.orderId}/${item.fileName}`);
  return row;
}

async function eventKinds(interactionId: string): Promise<string[]> {
  return (await h.ledger.listEvents(interactionId)).map((e) => e.kind);
}

/** Stores other bytes through the HTTP API, under the given idempotency key. */
async function putBytes(item: Pick<SyncItem, 'orderId' | 'fileName'>, body: string, key: string): Promise<void> {
  const file = path.join(h.workDir, `planted-${randomUUID()}`);
  await writeFile(file, body);
  await rs.put({
    orderId: item.orderId,
    fileName: item.fileName,
    sourcePath: file,
    sha256: sha256(body),
    size: Buffer.byteLength(body),
    contentType: 'image/png',
    idempotencyKey: key,
  });
}

function kinds(report: ConsistencyReport): string[] {
  return report.drifts.map((d) => `${d.kind} ${d.orderId}/${d.fileName}`);
}

async function expectClean(batchId: string): Promise<ConsistencyReport> {
  const again = await reconcileJson(batchId);
  expect(again.code, JSON.stringify(again.report.drifts)).toBe(0);
  expect(again.report.drifts).toEqual([]);
  return again.report;
}

describe('reconcile names each drift kind, --repair clears it, a second reconcile exits 0', () => {
  it('missing: a RECORDED copy deleted behind the ledger is sent again as a new, verified interaction', async () => {
    const items = await makeItems(4);
    const { batchId, result } = await runBatch(items);
    expect(result.state).toBe('COMPLETED');
    await expectClean(batchId);

    const gone = items[1]!;
    const before = await latest(batchId, gone);
    expect(await rs.remove(gone.orderId, gone.fileName)).toBe('removed');

    const text = await reconcile(batchId);
    expect(text.code, text.stderr).toBe(4);
    expect(text.stdout).toMatch(new RegExp(`missing +${gone.orderId}/${gone.fileName} \\(RECORDED`));
    expect(text.stdout).toContain('4 files checked');
    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(kinds(found.report)).toEqual([`missing ${gone.orderId}/${gone.fileName}`]);

    const repaired = await repairJson(batchId);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'missing', action: 'resent', ok: true }]);
    expect(repaired.result.after.drifts).toEqual([]);

    const now = await latest(batchId, gone);
    expect(now.interaction_id).toBe(repaired.result.repairs[0]!.interactionId);
    expect(now.interaction_id).not.toBe(before.interaction_id);
    expect(now).toMatchObject({ status: 'RECORDED', sha256: before.sha256, size_bytes: before.size_bytes });
    expect(await eventKinds(now.interaction_id)).toEqual(['OPENED', 'SENT', 'VERIFIED']);
    expect(await eventKinds(before.interaction_id)).toContain('RECONCILE_REPAIR');
    expect(await rs.stat(gone.orderId, gone.fileName)).toMatchObject({
      sha256: before.sha256,
      idempotencyKey: now.interaction_id,
    });
    await expectClean(batchId);
  });

  it('different-bytes: a copy altered under its own key is replaced and verified without --remove-foreign', async () => {
    const items = await makeItems(3);
    const { batchId } = await runBatch(items);
    const altered = items[2]!;
    const before = await latest(batchId, altered);
    await rs.remove(altered.orderId, altered.fileName);
    await putBytes(altered, 'altered bytes', before.interaction_id);

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(found.report.drifts).toMatchObject([
      { kind: 'different-bytes', orderId: altered.orderId, fileName: altered.fileName, held: { writer: 'this-batch' } },
    ]);
    const text = await reconcile(batchId);
    expect(text.stdout).toMatch(new RegExp(`different-bytes +${altered.orderId}/${altered.fileName}`));

    const repaired = await repairJson(batchId);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'different-bytes', action: 'resent', ok: true }]);
    const now = await latest(batchId, altered);
    expect(await eventKinds(now.interaction_id)).toEqual(['OPENED', 'REPLACED_COPY_REMOVED', 'SENT', 'VERIFIED']);
    expect((await rs.stat(altered.orderId, altered.fileName))?.sha256).toBe(before.sha256);
    await expectClean(batchId);
  });

  it('different-bytes written by another sender: --repair leaves it (exit 4), --remove-foreign replaces it', async () => {
    const items = await makeItems(2);
    const { batchId } = await runBatch(items);
    const replaced = items[0]!;
    const before = await latest(batchId, replaced);
    await rs.remove(replaced.orderId, replaced.fileName);
    await putBytes(replaced, 'another sender wrote this', `other-sender-${randomUUID()}`);

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(found.report.drifts).toMatchObject([{ kind: 'different-bytes', held: { writer: 'foreign' } }]);

    const refused = await reconcile(batchId, '--repair');
    expect(refused.code).toBe(4);
    expect(refused.stdout).toContain('--remove-foreign removes it');
    expect(refused.stdout).toContain('After repair: 1 drifts');
    expect((await rs.stat(replaced.orderId, replaced.fileName))?.sha256).toBe(sha256('another sender wrote this'));

    const repaired = await repairJson(batchId, '--remove-foreign');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect((await rs.stat(replaced.orderId, replaced.fileName))?.sha256).toBe(before.sha256);
    await expectClean(batchId);
  });

  it('stale: a source changed since it was recorded is sent again with its new bytes', async () => {
    const items = await makeItems(2);
    const { batchId } = await runBatch(items);
    const changed = items[1]!;
    const before = await latest(batchId, changed);
    await writeFile(changed.sourcePath, 'the scan was redone');

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(kinds(found.report)).toEqual([`stale ${changed.orderId}/${changed.fileName}`]);
    expect((await reconcile(batchId)).stdout).toMatch(/stale +/);
    // Without reading the sources the stale copy goes unseen, and the report says so.
    const unread = await reconcileJson(batchId, '--no-sources');
    expect(unread.code).toBe(0);
    expect(unread.report.unchecked).toContain('stale: sources were not read');

    const repaired = await repairJson(batchId);
    expect(repaired.code, repaired.stderr).toBe(0);
    const now = await latest(batchId, changed);
    expect(now.interaction_id).not.toBe(before.interaction_id);
    expect(now).toMatchObject({ status: 'RECORDED', sha256: sha256('the scan was redone') });
    expect((await rs.stat(changed.orderId, changed.fileName))?.sha256).toBe(sha256('the scan was redone'));
    await expectClean(batchId);
  });

  it('held-not-recorded: a ROLLED_BACK file put back by another sender is reported, and removed only with --remove-foreign, as a recorded rollback', async () => {
    h.simulator.setFaults({ rejectRate: 1 });
    const items = await makeItems(3);
    const { batchId, result } = await runBatch(items, { maxResends: 0 });
    h.simulator.setFaults({ rejectRate: 0 });
    expect(result.rolledBack).toBe(3);
    await expectClean(batchId);

    const back = items[0]!;
    const before = await latest(batchId, back);
    expect(before.status).toBe('ROLLED_BACK');
    await putBytes(back, 'put back by another sender', `other-sender-${randomUUID()}`);

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(found.report.drifts).toMatchObject([
      {
        kind: 'held-not-recorded',
        orderId: back.orderId,
        fileName: back.fileName,
        status: 'ROLLED_BACK',
        held: { writer: 'foreign' },
      },
    ]);
    expect((await reconcile(batchId)).stdout).toMatch(
      new RegExp(`held-not-recorded +${back.orderId}/${back.fileName} \\(ROLLED_BACK`),
    );

    const refused = await repairJson(batchId);
    expect(refused.code).toBe(4);
    expect(refused.result.repairs).toMatchObject([{ kind: 'held-not-recorded', action: 'skipped', ok: false }]);
    expect(await rs.stat(back.orderId, back.fileName)).not.toBeNull();

    const repaired = await repairJson(batchId, '--remove-foreign');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'held-not-recorded', action: 'removed', ok: true }]);
    expect(await rs.stat(back.orderId, back.fileName)).toBeNull();
    const now = await latest(batchId, back);
    expect(now.status).toBe('ROLLED_BACK');
    expect(await eventKinds(now.interaction_id)).toEqual(['OPENED', 'ROLLBACK_STARTED', 'ROLLED_BACK']);
    const rollback = (await h.ledger.rollbacksOf([now.interaction_id]))[0];
    expect(rollback).toMatchObject({ status: 'DONE' });
    expect(rollback!.reason).toContain('another sender');
    await expectClean(batchId);
  });

  it('held-never-started: a file of a failed batch that never started is held; a file under its orders that is not of the batch is a warning', async () => {
    h.simulator.setFaults({ rejectRate: 1 });
    const items = await makeItems(6, 3);
    const { batchId, result } = await runBatch(items, {
      maxConcurrency: 1,
      maxResends: 0,
      toleratedFailurePercent: 0,
    });
    h.simulator.setFaults({ rejectRate: 0 });
    expect(result.state).toBe('FAILED');
    const started = new Set((await h.ledger.latestInteractions(batchId)).map((r) => `${r.order_id}/${r.file_name}`));
    const never = items.filter((i) => !started.has(`${i.orderId}/${i.fileName}`));
    expect(never.length).toBeGreaterThan(0);
    const clean = await expectClean(batchId);
    expect(clean.files).toBe(items.length);

    const planted = never.at(-1)!;
    await putBytes(planted, 'a file the batch never sent', `other-sender-${randomUUID()}`);
    const stranger = { orderId: items[0]!.orderId, fileName: 'not-of-the-batch.png' };
    await putBytes(stranger, 'some other file', `other-sender-${randomUUID()}`);

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(found.report.drifts).toMatchObject([
      {
        kind: 'held-never-started',
        orderId: planted.orderId,
        fileName: planted.fileName,
        status: 'NEVER_STARTED',
        interactionId: null,
      },
    ]);
    expect(found.report.warnings).toMatchObject([{ kind: 'foreign-file', ...stranger }]);
    const text = await reconcile(batchId);
    expect(text.stdout).toMatch(new RegExp(`held-never-started +${planted.orderId}/${planted.fileName}`));
    expect(text.stdout).toMatch(new RegExp(`warning +foreign-file +${stranger.orderId}/${stranger.fileName}`));

    const repaired = await repairJson(batchId, '--remove-foreign');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'held-never-started', action: 'removed', ok: true }]);
    expect(await rs.stat(planted.orderId, planted.fileName)).toBeNull();
    // The removal is the file's one interaction in the batch: a cancelled file, its rollback done.
    const now = await latest(batchId, planted);
    expect(now.status).toBe('CANCELLED');
    expect((await h.ledger.rollbacksOf([now.interaction_id]))[0]).toMatchObject({ status: 'DONE' });
    // Not a file of the batch: reconcile never touches it.
    expect(await rs.stat(stranger.orderId, stranger.fileName)).not.toBeNull();
    const after = await expectClean(batchId);
    expect(after.warnings).toMatchObject([{ kind: 'foreign-file' }]);
  });

  it('rollback-failed: a file whose rollback met a foreign copy needs attention; --remove-foreign completes the rollback', async () => {
    const items = await makeItems(2);
    const blocked = items[0]!;
    await putBytes(blocked, 'held before the batch by another sender', `other-sender-${randomUUID()}`);
    const { batchId, result } = await runBatch(items, { maxResends: 0 });
    expect(result.rollbackFailed).toBe(1);

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(0);
    expect(found.report.needsAttention).toMatchObject([
      { kind: 'rollback-failed', orderId: blocked.orderId, fileName: blocked.fileName, held: { writer: 'foreign' } },
    ]);
    expect((await reconcile(batchId)).stdout).toMatch(new RegExp(`attention +rollback-failed +${blocked.orderId}/`));

    const repaired = await repairJson(batchId, '--remove-foreign');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'rollback-failed', action: 'removed', ok: true }]);
    expect(await rs.stat(blocked.orderId, blocked.fileName)).toBeNull();
    expect((await latest(batchId, blocked)).status).toBe('ROLLED_BACK');
    const after = await expectClean(batchId);
    expect(after.needsAttention).toEqual([]);
  });

  it('resends: a file resent more often than the threshold given is reported, and cannot be repaired', async () => {
    h.simulator.setFaults({ dropRate: 1 });
    const items = await makeItems(1);
    const { batchId } = await runBatch(items, { maxResends: 2, resendBackoffMs: 10 });
    h.simulator.setFaults({ dropRate: 0 });
    // The batch's own threshold (read from its start input) holds.
    const own = await reconcileJson(batchId);
    expect(own.code, JSON.stringify(own.report)).toBe(0);
    expect(own.report.unchecked.filter((u) => u.startsWith('resends'))).toEqual([]);

    const tighter = await reconcileJson(batchId, '--max-resends', '1');
    expect(tighter.code).toBe(4);
    expect(tighter.report.drifts).toMatchObject([{ kind: 'resends', detail: 'resent 2 times, the batch allows 1' }]);
    const repaired = await repairJson(batchId, '--max-resends', '1');
    expect(repaired.code).toBe(4);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'resends', action: 'skipped', ok: false }]);
  });

  // The two kinds below live in the ledger alone: no request to the recording system can plant
  // them, so these tests write the ledger directly.
  it('rollback-record: a ROLLED_BACK file whose rollback row is lost gets it written again once it is confirmed not held', async () => {
    h.simulator.setFaults({ rejectRate: 1 });
    const items = await makeItems(2);
    const { batchId } = await runBatch(items, { maxResends: 0 });
    h.simulator.setFaults({ rejectRate: 0 });
    const row = await latest(batchId, items[0]!);
    await ledgerSql(h.ledger).query`delete from rollbacks where interaction_id = ${row.interaction_id}`;

    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(kinds(found.report)).toEqual([`rollback-record ${items[0]!.orderId}/${items[0]!.fileName}`]);
    const repaired = await repairJson(batchId);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'rollback-record', action: 'rollback-recorded', ok: true }]);
    expect((await h.ledger.rollbacksOf([row.interaction_id]))[0]).toMatchObject({ status: 'DONE' });
    expect(await eventKinds(row.interaction_id)).toContain('RECONCILE_ROLLBACK_RECORDED');
    await expectClean(batchId);
  });

  it('unfinished: a file still SENDING is reported and left for a later reconcile', async () => {
    const batchId = `unfinished-${randomUUID().slice(0, 8)}`;
    const [item] = await makeItems(1);
    await h.ledger.ensureBatch({ batchId, workflowId: `sync-batch/${batchId}`, total: 1, state: 'RUNNING' });
    await h.ledger.openInteraction({
      interactionId: randomUUID(),
      batchId,
      orderId: item!.orderId,
      fileName: item!.fileName,
      target: 'default',
      sourcePath: item!.sourcePath,
      sha256: '',
      sizeBytes: 0,
      status: 'SENDING',
    });
    const found = await reconcileJson(batchId);
    expect(found.code).toBe(4);
    expect(found.report.drifts).toMatchObject([{ kind: 'unfinished', status: 'SENDING' }]);
    const repaired = await repairJson(batchId);
    expect(repaired.code).toBe(4);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'unfinished', action: 'skipped', ok: false }]);
  });

  it('a repair send that fails verification is rolled back and recorded as such; --repair exits 4', async () => {
    const items = await makeItems(2);
    const { batchId } = await runBatch(items);
    const gone = items[0]!;
    await rs.remove(gone.orderId, gone.fileName);
    // The recording system answers 201 but keeps nothing: verification's missing rule fails.
    h.simulator.setFaults({ dropRate: 1 });
    const repaired = await repairJson(batchId);
    h.simulator.setFaults({ dropRate: 0 });
    expect(repaired.code).toBe(4);
    expect(repaired.result.repairs).toMatchObject([{ kind: 'missing', action: 'resent', ok: false }]);
    const now = await latest(batchId, gone);
    expect(now.interaction_id).toBe(repaired.result.repairs[0]!.interactionId);
    expect(now.status).toBe('ROLLED_BACK');
    expect(await eventKinds(now.interaction_id)).toEqual([
      'OPENED',
      'SENT',
      'VERIFY_FAILED',
      'ROLLBACK_STARTED',
      'ROLLED_BACK',
    ]);
    const rollback = (await h.ledger.rollbacksOf([now.interaction_id]))[0];
    expect(rollback).toMatchObject({ status: 'DONE' });
    expect(rollback!.reason).toContain('failed verification: missing');
    // The ledger's story is true again (the file is not held, and says so): no drift is left.
    await expectClean(batchId);
  });

  it('a recording system that cannot be reached ends reconcile with exit 1 and a one-line reason', async () => {
    const items = await makeItems(1);
    const { batchId } = await runBatch(items);
    const res = await runCli(['reconcile', batchId], {
      env: { ...env, RECORDING_SYSTEM_URL: 'http://127.0.0.1:9' },
      cwd: h.workDir,
      timeoutMs: 60_000,
    });
    expect(res.code).toBe(1);
    const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^image-sync: /);
  });

  it('--remove-foreign without --repair is refused with exit 2', async () => {
    const res = await reconcile('any-batch', '--remove-foreign');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--remove-foreign only goes with --repair');
  });
});
