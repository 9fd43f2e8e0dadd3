/**
 * The core behaviours every kind of target must show against a real server: delivery, resend
 * after a lost or corrupted copy, rollback of only one's own copy, cancel, reconcile finding and
 * repairing drift, and an outage that pauses the batch and resumes it. The consistency invariant
 * holds after every batch.
 *
 * A kind's test file gives a rig: its server (started, stopped, started again) and a factory of
 * its adapter. Faults the real servers do not make by themselves (losing or altering a stored
 * copy, a business rejection) are made by a wrapper around the worker's adapter, through a
 * second adapter of the same kind, as another party acting on the server would.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { repairBatch } from '../../src/consistency/repair';
import type { Ledger } from '../../src/ledger/port';
import {
  RecordingSystemError,
  type ListPage,
  type PutRequest,
  type PutResult,
  type Receipt,
  type RecordingSystem,
  type RequestOptions,
} from '../../src/recording-system/port';
import { cancelSignal, progressQuery } from '../../src/shared';
import { sha256File } from '../../src/source/files';
import { it } from '../helpers/fixture';
import type { Harness, HarnessOptions } from '../helpers/harness';
import { waitFor } from '../helpers/wait';

type Fault = 'lose' | 'corrupt' | 'reject';

/** The worker's adapter, with faults made once per file after its first successful send. */
class Faulty implements RecordingSystem {
  readonly faults = new Map<string, Fault>();
  putDelayMs = 0;
  puts = 0;
  /** Where garbage bytes are written. */
  scratch = '';
  constructor(
    private readonly inner: RecordingSystem,
    private readonly other: RecordingSystem,
  ) {}

  async put(req: PutRequest): Promise<PutResult> {
    this.puts += 1;
    if (this.putDelayMs) await new Promise((r) => setTimeout(r, this.putDelayMs));
    const result = await this.inner.put(req);
    const key = `${req.orderId}/${req.fileName}`;
    const fault = this.faults.get(key);
    this.faults.delete(key);
    if (fault === 'lose') await this.other.remove(req.orderId, req.fileName);
    if (fault === 'corrupt') await replaceBytes(this.other, req, this.scratch);
    if (fault === 'reject') throw new RecordingSystemError('rejected', `${key} refused by a business rule`, 422);
    return result;
  }
  stat(orderId: string, fileName: string, opts?: RequestOptions): Promise<Receipt | null> {
    return this.inner.stat(orderId, fileName, opts);
  }
  remove(orderId: string, fileName: string, opts?: RequestOptions) {
    return this.inner.remove(orderId, fileName, opts);
  }
  removeIfOwn(orderId: string, fileName: string, idempotencyKey: string, opts?: RequestOptions) {
    return this.inner.removeIfOwn(orderId, fileName, idempotencyKey, opts);
  }
  list(opts?: { cursor?: string | null; limit?: number } & RequestOptions): Promise<ListPage> {
    return this.inner.list(opts);
  }
  async close() {
    await this.inner.close?.();
  }
}

/** Writes `bytes` to `dir/name` and returns the request that sends it to order `o` under `idempotencyKey`. */
export async function primitiveRequest(
  dir: string,
  name: string,
  bytes: Buffer,
  idempotencyKey: string,
): Promise<PutRequest> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  const { sha256 } = await sha256File(file);
  return {
    orderId: 'o',
    fileName: name,
    sourcePath: file,
    sha256,
    size: bytes.length,
    contentType: 'application/octet-stream',
    idempotencyKey,
  };
}

/** The server holds other bytes of the same size under the same idempotency key. */
async function replaceBytes(system: RecordingSystem, req: PutRequest, scratch: string) {
  const file = path.join(scratch, `garbage-${randomBytes(4).toString('hex')}`);
  await writeFile(file, randomBytes(req.size));
  const { sha256 } = await sha256File(file);
  await system.remove(req.orderId, req.fileName);
  await system.put({ ...req, sourcePath: file, sha256 });
}

async function eventsOf(ledger: Ledger, batchId: string) {
  const out: { kind: string; detail: Record<string, unknown> }[] = [];
  for (const row of await ledger.listInteractions(batchId)) {
    for (const e of await ledger.listEvents(row.interaction_id)) {
      out.push({ kind: e.kind, detail: e.detail ? (JSON.parse(e.detail) as Record<string, unknown>) : {} });
    }
  }
  return out;
}

async function listAll(system: RecordingSystem, limit: number): Promise<Receipt[]> {
  const files: Receipt[] = [];
  let cursor: string | null = null;
  do {
    const page: ListPage = await system.list({ cursor, limit });
    files.push(...page.files);
    cursor = page.nextCursor;
  } while (cursor);
  return files;
}

export interface DestinationRig {
  /** A new adapter to the rig's server, its files under namespace `ns` (a prefix, a folder). */
  system(ns: string): RecordingSystem;
  /** Takes the server down (an outage) and brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The behaviours, against one server for the file (`rig`), each test under a namespace of its own.
 * `timeoutMs` bounds each test.
 */
export function describeDestination(kind: string, startRig: () => Promise<DestinationRig>) {
  describe(`${kind} target against a real server`, () => {
    let rig: DestinationRig;
    beforeAll(async () => {
      rig = await startRig();
    });
    afterAll(async () => {
      await rig?.close();
    });

    /** A harness whose default target is the rig's server; the worker's adapter makes faults. */
    async function setUp(harness: (o: HarnessOptions) => Promise<Harness>) {
      const ns = `t${randomBytes(4).toString('hex')}`;
      let faulty: Faulty | undefined;
      const h = await harness({
        policy: { resendBackoffMs: 50 },
        defaultSystem: (use) => {
          if (use === 'stack') return rig.system(ns);
          faulty = new Faulty(rig.system(ns), rig.system(ns));
          return faulty;
        },
      });
      faulty!.scratch = h.workDir;
      return { h, faulty: faulty!, system: h.targets.get('default') };
    }

    it('delivers a batch: the server holds the source bytes, listed page by page', async ({ harness }) => {
      const { h, system } = await setUp(harness);
      const items = await h.makeFiles(8, 4096, 4);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 4, maxResends: 3 });
      const result = await handle.result();
      expect(result).toMatchObject({ state: 'COMPLETED', recorded: 8, resends: 0 });
      const held = await listAll(system, 3);
      expect(held).toHaveLength(8);
      for (const row of await h.ledger.latestInteractions(batchId)) {
        const copy = held.find((f) => f.orderId === row.order_id && f.fileName === row.file_name);
        expect(copy).toMatchObject({ sha256: row.sha256, size: row.size_bytes, idempotencyKey: row.interaction_id });
      }
      expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
    });

    it('a lost copy and a corrupted copy fail verification and are resent', async ({ harness }) => {
      const { h, faulty } = await setUp(harness);
      const items = await h.makeFiles(6, 4096, 3);
      faulty.faults.set(`${items[0]!.orderId}/${items[0]!.fileName}`, 'lose');
      faulty.faults.set(`${items[1]!.orderId}/${items[1]!.fileName}`, 'corrupt');
      const { batchId, handle } = await h.start(items, { maxConcurrency: 3, maxResends: 3 });
      const result = await handle.result();
      expect(result).toMatchObject({ state: 'COMPLETED', recorded: 6, resends: 2 });
      const rules = (await eventsOf(h.ledger, batchId))
        .filter((e) => e.kind === 'VERIFY_FAILED')
        .map((e) => e.detail.rule)
        .sort();
      expect(rules).toEqual(['checksum', 'missing']);
      expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
    });

    it("a refused file is rolled back; another sender's copy is left in place", async ({ harness }) => {
      const { h, faulty, system } = await setUp(harness);
      const items = await h.makeFiles(4, 2048, 2);
      const [refused, taken] = [items[0]!, items[1]!];
      faulty.faults.set(`${refused.orderId}/${refused.fileName}`, 'reject');
      const { sha256, size } = await sha256File(taken.sourcePath);
      const foreign = {
        orderId: taken.orderId,
        fileName: taken.fileName,
        sha256,
        size,
        idempotencyKey: 'another-sender',
      };
      await replaceBytes(system, { ...foreign, sourcePath: taken.sourcePath, contentType: 'image/png' }, h.workDir);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 4, maxResends: 2 });
      const result = await handle.result();
      expect(result).toMatchObject({ state: 'COMPLETED_WITH_FAILURES', recorded: 2, rolledBack: 1, rollbackFailed: 1 });
      expect(await system.stat(refused.orderId, refused.fileName)).toBeNull();
      expect((await system.stat(taken.orderId, taken.fileName))?.idempotencyKey).toBe('another-sender');
      const rollbacks = await h.ledger.listRollbacks(batchId);
      expect(rollbacks.map((r) => r.status).sort()).toEqual(['DONE', 'FAILED']);
      const report = await h.consistency(batchId, 2);
      expect(report.drifts).toEqual([]);
      expect(report.needsAttention).toHaveLength(1);
    });

    it('cancel rolls back the files in flight and removes their copies', async ({ harness }) => {
      const { h, faulty, system } = await setUp(harness);
      faulty.putDelayMs = 1_500;
      const items = await h.makeFiles(6, 2048, 3);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 3, maxResends: 2 });
      await waitFor('three sends in flight', () => faulty.puts >= 3);
      await handle.signal(cancelSignal, 'operator test');
      const result = await handle.result();
      expect(result.state).toBe('CANCELLED');
      expect(result.recorded).toBe(0);
      expect(await listAll(system, 100)).toEqual([]);
      expect((await h.consistency(batchId, 2)).drifts).toEqual([]);
    });

    it('reconcile finds a lost and an altered copy, and --repair resends them', async ({ harness }) => {
      const { h, system } = await setUp(harness);
      const items = await h.makeFiles(4, 2048, 2);
      const { batchId, handle } = await h.start(items, { maxConcurrency: 4, maxResends: 2 });
      expect((await handle.result()).recorded).toBe(4);
      expect((await h.consistency(batchId, 2)).drifts).toEqual([]);
      const [lost, altered] = [items[0]!, items[1]!];
      await system.remove(lost.orderId, lost.fileName);
      const held = (await system.stat(altered.orderId, altered.fileName))!;
      await replaceBytes(
        system,
        { ...held, sourcePath: altered.sourcePath, contentType: 'image/png', idempotencyKey: held.idempotencyKey },
        h.workDir,
      );
      const before = await h.consistency(batchId, 2);
      expect(before.drifts.map((d) => `${d.orderId}/${d.fileName}`).sort()).toEqual(
        [`${lost.orderId}/${lost.fileName}`, `${altered.orderId}/${altered.fileName}`].sort(),
      );
      const repaired = await repairBatch({ ledger: h.ledger, targets: h.targets, batchId, maxResends: 2 });
      expect(repaired.after.drifts).toEqual([]);
      // The check after the repair, done again from scratch: the invariant holds.
      expect((await h.consistency(batchId, 2)).drifts).toEqual([]);
      for (const item of [lost, altered]) {
        expect((await system.stat(item.orderId, item.fileName))?.sha256).toBe(
          (await sha256File(item.sourcePath)).sha256,
        );
      }
    });

    it('an outage pauses the batch, which resumes when the server is back', async ({ harness }) => {
      const { h, faulty } = await setUp(harness);
      faulty.putDelayMs = 300;
      const items = await h.makeFiles(8, 2048, 4);
      const { batchId, handle } = await h.start(items, {
        maxConcurrency: 2,
        maxResends: 20,
        outagePauseAfter: 2,
        probeIntervalMs: 300,
      });
      await waitFor('two files recorded', async () => (await handle.query(progressQuery)).recorded >= 2);
      await rig.stop();
      try {
        const paused = await waitFor('the automatic pause', async () => {
          const p = await handle.query(progressQuery);
          return p.paused && p;
        });
        expect(paused.state).toBe('PAUSED');
      } finally {
        await rig.start();
      }
      const result = await handle.result();
      expect(result).toMatchObject({ state: 'COMPLETED', recorded: 8 });
      expect((await h.consistency(batchId, 20)).drifts).toEqual([]);
    });
  });
}
