/**
 * Batch policy and routing: the manifest's sha256 and the source's presence checked at send
 * time, items routed to their target, atomic batches, and the tolerated failure percentage.
 */
import { mkdir, rm } from 'node:fs/promises';
import { describe, expect } from 'vitest';
import { fileKey } from '../../src/shared';
import { it } from '../helpers/fixture';

describe('batch policy and routing', () => {
  it('a manifest sha256 that does not match the file is rolled back, never sent, never resent', async ({ harness }) => {
    const h = await harness();
    const items = await h.makeFiles(3, 256, 3);
    items[1] = { ...items[1]!, sha256: 'f'.repeat(64) };
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3, maxResends: 3 });
    const result = await handle.result();
    expect(result.recorded).toBe(2);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toMatchObject({ fileName: items[1].fileName, state: 'ROLLED_BACK', resends: 0 });
    expect(result.failures[0]!.reason).toMatch(/^SourceChecksumMismatch/);
    expect(h.simulator.stats().requests.PUT).toBe(2);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('a source file gone by send time, or a folder in its place, is rolled back as SourceMissing', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(3, 256, 3);
    await h.stopWorker();
    const { batchId, handle } = await h.start(items, { maxConcurrency: 3 });
    await rm(items[0]!.sourcePath);
    await rm(items[1]!.sourcePath);
    await mkdir(items[1]!.sourcePath);
    await h.startWorker();
    const result = await handle.result();
    expect(result.recorded).toBe(1);
    const failed = [...result.failures].sort((a, b) => a.fileName.localeCompare(b.fileName));
    const expected = [items[0]!, items[1]!].sort((a, b) => a.fileName.localeCompare(b.fileName));
    expect(failed.map((f) => [f.fileName, f.state])).toEqual(expected.map((i) => [i.fileName, 'ROLLED_BACK']));
    for (const f of failed) expect(f.reason).toMatch(/^SourceMissing\b.*is missing/);
    expect(h.simulator.stats().requests.PUT ?? 0).toBe(1);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it("each item goes to its target's recording system; an unknown target is refused", async ({ harness }) => {
    const h = await harness({ extraTargets: ['east'] });
    const items = await h.makeFiles(5, 256, 5);
    items[1] = { ...items[1]!, target: 'east' };
    items[2] = { ...items[2]!, target: 'east' };
    items[3] = { ...items[3]!, target: 'north' };
    const { batchId, handle } = await h.start(items, { maxConcurrency: 5 });
    const result = await handle.result();
    expect(result.recorded).toBe(4);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]!.reason).toMatch(/^UnknownTarget: unknown target "north"/);
    const keys = (files: { orderId: string; fileName: string }[]) =>
      files.map((f) => fileKey(f.orderId, f.fileName)).sort();
    const east = await h.targets.get('east').list();
    const main = await h.targets.get('default').list();
    expect(keys(east.files)).toEqual(keys([items[1], items[2]]));
    expect(keys(main.files)).toEqual(keys([items[0]!, items[4]!]));
    const rows = await h.ledger.latestInteractions(batchId);
    expect(rows.find((r) => r.file_name === items[1]!.fileName)?.target).toBe('east');
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('an atomic batch rolls back the files it had recorded when one file fails', async ({ harness }) => {
    const h = await harness();
    const items = await h.makeFiles(6, 256, 6);
    items[5] = { ...items[5]!, sha256: '0'.repeat(64) };
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, atomic: true });
    const result = await handle.result();
    expect(result.state).toBe('FAILED');
    expect(result.recorded).toBe(0);
    expect(result.rolledBack).toBe(6);
    expect((await h.targets.get('default').list()).files).toEqual([]);
    const rows = await h.ledger.latestInteractions(batchId);
    expect(rows.every((r) => r.status === 'ROLLED_BACK')).toBe(true);
    const rollbacks = await h.ledger.listRollbacks(batchId);
    expect(rollbacks.filter((r) => r.status === 'DONE')).toHaveLength(6);
    expect(rollbacks.filter((r) => r.reason.startsWith('atomic batch ended'))).toHaveLength(5);
    expect((await h.ledger.getBatch(batchId))?.state).toBe('FAILED');
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });

  it('past the tolerated failure percentage the batch stops starting files and ends FAILED', async ({ harness }) => {
    const h = await harness({ simulator: { rejectRate: 1 } });
    const items = await h.makeFiles(20, 128, 10);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, maxResends: 0, toleratedFailurePercent: 10 });
    const result = await handle.result();
    expect(result.state).toBe('FAILED');
    // 3 of 20 failed files pass 10%; at most one more window was in flight by then.
    expect(result.rolledBack).toBeGreaterThanOrEqual(3);
    expect(result.rolledBack).toBeLessThanOrEqual(4);
    expect(await h.ledger.latestInteractions(batchId)).toHaveLength(result.rolledBack);
    expect((await h.consistency(batchId, 0)).drifts).toEqual([]);
  });
});
