/**
 * scheduledReconcile: one run of a reconcile schedule (`image-sync schedule create --reconcile`).
 * It checks one batch, or every batch whose sources lie under a folder, against the recording
 * systems; what it finds is kept in the ledger by the activity and shown in the run's current
 * details, so a person in the Web UI sees the drift without decoding payloads.
 */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { BatchState } from '../shared';
import { createNotifier } from './notifier';
import type { ReconcileActivities } from '../activities/reconcile';
import type {
  ReconcileSummary,
  ScheduledReconcileInput,
  ScheduledReconcileResult,
} from '../consistency/scheduled-types';

const { findBatchesToReconcile } = proxyActivities<ReconcileActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/** A large batch takes minutes to check; the heartbeat carries its progress. */
const { reconcileBatch } = proxyActivities<ReconcileActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

function details(input: ScheduledReconcileInput, done: ReconcileSummary[], of: number): string {
  const what = 'batchId' in input ? `batch ${input.batchId}` : `the batches of ${input.dir}`;
  const drifts = done.reduce((n, s) => n + s.drifts, 0);
  const lines = [
    `**Reconcile of ${what}** (schedule ${input.scheduleId}): ${done.length} of ${of} batches checked, ` +
      `${drifts === 0 ? 'no drift' : `**${drifts} drifts**`}`,
  ];
  for (const s of done) {
    const kinds = Object.entries(s.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    lines.push(
      `- ${s.batchId}: ${s.files} files, ${s.drifts} drifts${kinds ? ` (${kinds})` : ''}, ` +
        `${s.warnings} warnings, ${s.needsAttention} need attention`,
    );
    for (const line of s.sample) lines.push(`  - ${line}`);
  }
  return lines.join('\n');
}

export async function scheduledReconcile(input: ScheduledReconcileInput): Promise<ScheduledReconcileResult> {
  const batchIds = 'batchId' in input ? [input.batchId] : await findBatchesToReconcile({ dir: input.dir });
  const done: ReconcileSummary[] = [];
  const undelivered: string[] = [];
  const show = () =>
    setCurrentDetails(
      details(input, done, batchIds.length) +
        (undelivered.length
          ? `\n\nnotifications not delivered: ${undelivered.length} (last: ${undelivered.at(-1)})`
          : ''),
    );
  const notifier = createNotifier(input.notify, (text) => {
    undelivered.push(text);
    show();
  });
  show();
  for (const batchId of batchIds) {
    const summary = await reconcileBatch({ batchId });
    done.push(summary);
    show();
    if (summary.drifts > 0) {
      const l = summary.ledger;
      notifier.emit('reconcile.drift', {
        batchId,
        state: (l?.state ?? 'COMPLETED') as BatchState,
        total: l?.total ?? summary.files,
        recorded: l?.recorded ?? 0,
        rolledBack: l?.rolledBack ?? 0,
        rollbackFailed: l?.rollbackFailed ?? 0,
        cancelled: l?.cancelled ?? 0,
        detail: {
          drifts: summary.drifts,
          byKind: summary.byKind,
          sample: summary.sample,
          scheduleId: input.scheduleId,
        },
      });
    }
  }
  await notifier.settle();
  return { batches: done, drifts: done.reduce((n, s) => n + s.drifts, 0) };
}
