/**
 * Tokens never reach workflow history or the ledger: not in inputs, not in error messages,
 * not even when the recording system refuses the token and says so.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject } from 'vitest';
import { fileWorkflowId } from '../../src/shared';
import { TEST_TOKEN, type Harness } from '../helpers/harness';
import { it } from '../helpers/fixture';

async function everyHistory(workflowIds: string[]): Promise<string> {
  const shown = await Promise.all(
    workflowIds.map(
      async (id) =>
        (
          await promisify(execFile)(inject('temporalCliPath'), [
            'workflow',
            'show',
            '--workflow-id',
            id,
            '--output',
            'json',
            '--address',
            inject('temporalAddress'),
          ])
        ).stdout,
    ),
  );
  // Payloads are base64 in the JSON: decode them so a token inside one would show.
  return shown
    .map(
      (s) => s + s.replace(/"data":\s*"([A-Za-z0-9+/=]+)"/g, (_, b64: string) => Buffer.from(b64, 'base64').toString()),
    )
    .join('\n');
}

async function everyLedgerRow(h: Harness, batchId: string): Promise<string> {
  const rows: unknown[] = [
    await h.ledger.getBatch(batchId),
    ...(await h.ledger.listInteractions(batchId)),
    ...(await h.ledger.listRollbacks(batchId)),
  ];
  for (const r of await h.ledger.listInteractions(batchId)) rows.push(...(await h.ledger.listEvents(r.interaction_id)));
  return JSON.stringify(rows);
}

describe('secrets', () => {
  it('the token is nowhere in histories or the ledger after a faulty batch', async ({ harness }) => {
    const h = await harness({ simulator: { rejectRate: 0.3, dropRate: 0.2, failRate: 0.1, seed: 4 } });
    const items = await h.makeFiles(8, 256, 4);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 4, maxResends: 3 });
    const result = await handle.result();
    expect(result.rolledBack).toBeGreaterThan(0);
    const ids = [handle.workflowId, ...items.map((i) => fileWorkflowId(batchId, i.orderId, i.fileName))];
    const histories = await everyHistory(ids);
    expect(histories).toContain('Rejected'); // the failures are there, in words
    expect(histories).not.toContain(TEST_TOKEN);
    expect(await everyLedgerRow(h, batchId)).not.toContain(TEST_TOKEN);
  });

  it('a refused token is not echoed into histories or the ledger', async ({ harness }) => {
    const wrong = 'wrong-token-7c1e9f0b2d';
    const h = await harness({ workerToken: wrong });
    const items = await h.makeFiles(2, 256, 2);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 2, maxResends: 1 });
    const result = await handle.result();
    expect(result.rollbackFailed).toBe(2); // nothing can be sent, nor checked, with that token
    expect(result.failures.every((f) => f.reason.startsWith('Unauthorized'))).toBe(true);
    const ids = [handle.workflowId, ...items.map((i) => fileWorkflowId(batchId, i.orderId, i.fileName))];
    const histories = await everyHistory(ids);
    expect(histories).toContain('Unauthorized');
    for (const secret of [wrong, TEST_TOKEN]) {
      expect(histories).not.toContain(secret);
      expect(await everyLedgerRow(h, batchId)).not.toContain(secret);
    }
  });
});
