/** The activities syncBatch calls, with their timeouts and retry policies (options.ts). */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ACTIVITY_OPTIONS, AWAIT_FILES_OPTIONS, LEDGER_ACTIVITY_OPTIONS } from './options';

export const { loadItems, rollbackRecordedFiles, queueBatchRedrives } = proxyActivities<Activities>(
  ACTIVITY_OPTIONS.batch,
);
export const { awaitFileResults } = proxyActivities<Activities>(AWAIT_FILES_OPTIONS);
export const { probeRecordingSystem } = proxyActivities<Activities>(ACTIVITY_OPTIONS.probe);
export const { openBatch, finishBatch, applyLimits, loadRedrives } =
  proxyLocalActivities<Activities>(LEDGER_ACTIVITY_OPTIONS);
