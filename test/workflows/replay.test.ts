/**
 * Replays recorded workflow histories against the current workflow code: a change that would
 * break running workflows (non-determinism) fails here before it reaches production.
 *
 * Two sources: histories recorded from a batch run right now (with faults, resends, rollbacks),
 * and the histories kept under test/fixtures/histories from earlier versions of the code
 * (`RECORD_HISTORIES=1 npx vitest run test/workflows/replay.test.ts` adds the current ones).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { describe, expect, inject } from 'vitest';
import { batchWorkflowId, fileWorkflowId } from '../../src/shared';
import { imageSyncDataConverter } from '../../src/codec/encryption';
import { testEncryptionKeys } from '../helpers/harness';
import { it } from '../helpers/fixture';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/** The bundle, and the test stacks' codec: their histories hold encrypted payloads. */
function replayOptions() {
  return {
    workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
    dataConverter: imageSyncDataConverter(testEncryptionKeys()),
  };
}

describe('replay of recorded histories', () => {
  it('replays the histories of a batch just run, with resends and rollbacks', async ({ harness }) => {
    const h = await harness({ simulator: { dropRate: 0.2, rejectRate: 0.2, seed: 3 } });
    const items = await h.makeFiles(10, 256, 5);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 5, maxResends: 4 });
    await handle.result();
    const histories: { workflowId: string; history: temporal.api.history.v1.IHistory }[] = [];
    histories.push({ workflowId: batchWorkflowId(batchId), history: await handle.fetchHistory() });
    for (const item of items) {
      const id = fileWorkflowId(batchId, item.orderId, item.fileName);
      histories.push({ workflowId: id, history: await h.client.workflow.getHandle(id).fetchHistory() });
    }
    if (process.env.RECORD_HISTORIES === '1') {
      // Keeps these histories for future versions of the code to replay (see the second test).
      for (const { workflowId } of histories) {
        const shown = execFileSync(inject('temporalCliPath'), [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '--output',
          'json',
          '--address',
          inject('temporalAddress'),
        ]);
        writeFileSync(path.join(FIXTURES, `${workflowId.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`), shown);
      }
    }
    const results = Worker.runReplayHistories(replayOptions(), histories);
    let replayed = 0;
    for await (const r of results) {
      expect(r.error, `${r.workflowId}: ${String(r.error)}`).toBeUndefined();
      replayed += 1;
    }
    expect(replayed).toBe(11);
  });

  it('replays the histories kept from earlier versions', async () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8'))),
    }));
    let replayed = 0;
    for await (const r of Worker.runReplayHistories(replayOptions(), histories)) {
      expect(r.error, `${r.workflowId}: ${String(r.error)}`).toBeUndefined();
      replayed += 1;
    }
    expect(replayed).toBe(files.length);
  });
});
