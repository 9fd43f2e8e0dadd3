import { temporal } from '@temporalio/proto';
import { describe, expect } from 'vitest';
import { fileWorkflowId } from '../../src/shared';
import { it } from '../helpers/fixture';

const EventType = temporal.api.enums.v1.EventType;

describe('syncBatch against the real dev server', () => {
  it('records every file, verified, with one interaction each', async ({ harness }) => {
    const h = await harness();
    const items = await h.makeFiles(30, 4096, 10);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 8 });
    const result = await handle.result();
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(30);
    expect(result.ledger).toEqual({ recorded: 30, rolledBack: 0, failed: 0 });

    const held = await h.targets.get('default').list({ limit: 1000 });
    expect(held.files).toHaveLength(30);
    const rows = await h.ledger.listInteractions(batchId);
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.interaction_id)).size).toBe(30);
    for (const row of rows) {
      expect(row.status).toBe('RECORDED');
      const receipt = held.files.find((f) => f.orderId === row.order_id && f.fileName === row.file_name);
      expect(receipt?.idempotencyKey).toBe(row.interaction_id);
      expect(receipt?.sha256).toBe(row.sha256);
    }
    const batch = await h.ledger.getBatch(batchId);
    expect(batch?.state).toBe('COMPLETED');
    expect(batch?.finished_at).toBeTruthy();

    // The batch heard of every file once, from its completion; no file signalled it.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.childWorkflowExecutionCompletedEventAttributes)).toHaveLength(30);
    expect(events.filter((e) => e.workflowExecutionSignaledEventAttributes)).toEqual([]);

    // Each file workflow ran its whole happy path in one workflow task, as one local activity.
    for (const item of items.slice(0, 5)) {
      const file = await h.client.workflow
        .getHandle(fileWorkflowId(batchId, item.orderId, item.fileName))
        .fetchHistory();
      const kinds = (file.events ?? []).map((e) => String(e.eventType));
      expect(kinds.filter((k) => k === String(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED))).toHaveLength(1);
      expect(kinds.filter((k) => k === String(EventType.EVENT_TYPE_MARKER_RECORDED))).toHaveLength(1);
      expect(kinds.length).toBeLessThanOrEqual(8);
    }

    const report = await h.consistency(batchId, 3);
    expect(report.drifts).toEqual([]);
  });
});

describe('a file over the local-send limit', () => {
  it('sends a file over the local-send limit by a regular, heartbeating activity, verified the same way', async ({
    harness,
  }) => {
    const h = await harness();
    const items = await h.makeFiles(4, 64 * 1024, 2);
    const { batchId, handle } = await h.start(items, { maxConcurrency: 4, localSendMaxBytes: 1024 });
    const result = await handle.result();
    expect(result.failures).toEqual([]);
    expect(result.state).toBe('COMPLETED');
    expect(result.recorded).toBe(4);
    const item = items[0]!;
    const file = await h.client.workflow.getHandle(fileWorkflowId(batchId, item.orderId, item.fileName)).fetchHistory();
    const scheduled = (file.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    expect(scheduled).toEqual(['sendFile']);
    const [row] = await h.ledger.listInteractions(batchId);
    const events = await h.ledger.listEvents(row!.interaction_id);
    expect(events.map((e) => e.kind)).toEqual(['OPENED', 'SENT', 'VERIFIED']);
    expect((await h.consistency(batchId, 3)).drifts).toEqual([]);
  });
});
