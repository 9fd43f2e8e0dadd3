/**
 * Starting a batch: read and validate the input, write the normalised manifest the workers read
 * in pages, and start `syncBatch` under its business id. A second start of a running or finished
 * batch id is rejected rather than doing the work twice.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import {
  BATCH_WORKFLOW_TYPE,
  DEFAULT_POLICY,
  SA_BATCH_ID,
  SA_FILES_FAILED,
  SA_FILES_TOTAL,
  SA_STATE,
  batchWorkflowId,
  type BatchPolicy,
  type SyncBatchInput,
  type SyncItem,
  type NotifyOptions,
  type RateLimit,
} from '../shared';
import { policyBoundsText, withinPolicyBounds } from '../config/policy-bounds';
import { NormalizedManifestWriter, removeNormalizedManifest, writeNormalizedManifest } from '../source/normalized';
import { InputError, readInput, type InputSource, type InputSummary, type ReadInputOptions } from './input';
import type { syncBatch } from '../workflows/sync-batch';

export const DEFAULT_STATE_DIR = '.image-sync';

export { InputError, loadInput, type LoadedInput } from './input';

export interface StartBatchOptions {
  batchId?: string;
  policy?: Partial<BatchPolicy>;
  taskQueue: string;
  /** Where normalised manifests are written; workers must be able to read it. */
  stateDir?: string;
  /** Continue as new after this many events per run (default: the workflow's own). */
  continueAsNewAfterEvents?: number;
  /** Items per manifest page, and failures kept (default: the workflow's own; see SyncBatchInput). */
  pageSize?: number;
  failuresKept?: number;
  /** Limits of the whole batch, on top of each target's. */
  limits?: RateLimit;
  /** Where the batch POSTs its events. */
  notify?: NotifyOptions;
}

export function validatePolicy(partial: Partial<BatchPolicy> = {}): BatchPolicy {
  const policy = {
    ...DEFAULT_POLICY,
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
  };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new InputError(what);
  };
  check(
    Number.isInteger(policy.maxConcurrency) && policy.maxConcurrency >= 1 && policy.maxConcurrency <= 2000,
    '--max-concurrency must be a whole number from 1 to 2000',
  );
  check(
    Number.isInteger(policy.maxResends) && policy.maxResends >= 0 && policy.maxResends <= 100,
    '--max-resends must be a whole number from 0 to 100',
  );
  check(
    Number.isFinite(policy.resendBackoffMs) && policy.resendBackoffMs >= 0,
    '--resend-backoff must be 0 or more milliseconds',
  );
  check(
    Number.isInteger(policy.outagePauseAfter) && policy.outagePauseAfter >= 0,
    '--outage-pause-after must be a whole number, 0 or more',
  );
  check(
    Number.isInteger(policy.probeIntervalMs) && policy.probeIntervalMs >= 100,
    '--probe-interval-ms must be at least 100',
  );
  check(
    policy.claimPatienceMs === undefined || withinPolicyBounds('claimPatienceMs', policy.claimPatienceMs),
    `--claim-patience-ms must be ${policyBoundsText('claimPatienceMs')}`,
  );
  check(
    policy.toleratedFailurePercent >= 0 && policy.toleratedFailurePercent <= 100,
    '--tolerated-failure-percent must be from 0 to 100',
  );
  return policy;
}

export function validateBatchId(batchId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(batchId)) {
    throw new InputError(
      `batch id "${batchId}" must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return batchId;
}

export function newBatchId(now = new Date()): string {
  return `${now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-${randomUUID().slice(0, 8)}`;
}

/** Where a start writes its normalised manifest: a file of its own per start, under the state folder. */
export function newManifestPath(batchId: string, stateDir = DEFAULT_STATE_DIR): string {
  // A manifest of its own per start: a refused start must not touch a running batch's manifest.
  return path.resolve(
    stateDir,
    'manifests',
    `${batchId}.${Date.now().toString(36)}-${randomUUID().slice(0, 8)}.ndjson`,
  );
}

/**
 * Reads a manifest or a folder as a stream (see readInput) straight into a new normalised
 * manifest for `batchId`; nothing is left behind when the input is refused.
 */
export async function writeInputManifest(
  src: InputSource,
  opts: { batchId: string; stateDir?: string } & Omit<ReadInputOptions, 'files'>,
): Promise<PreparedManifest & InputSummary> {
  const writer = await NormalizedManifestWriter.create(newManifestPath(opts.batchId, opts.stateDir));
  let summary: InputSummary;
  try {
    summary = await readInput(src, opts, (c) => writer.add(c.item));
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const { file, items } = await writer.finish();
  return { ...summary, manifestPath: file, total: items };
}

/** A normalised manifest written for a start (see writeInputManifest). */
export interface PreparedManifest {
  manifestPath: string;
  total: number;
}

/** Writes `items` as the batch's normalised manifest, then starts it (see startPreparedBatch). */
export async function startBatch(client: Client, items: SyncItem[], opts: StartBatchOptions): Promise<StartedBatch> {
  const batchId = validateBatchId(opts.batchId ?? newBatchId());
  validatePolicy(opts.policy);
  const manifestPath = newManifestPath(batchId, opts.stateDir);
  await writeNormalizedManifest(items, manifestPath);
  return startPreparedBatch(client, { manifestPath, total: items.length }, { ...opts, batchId });
}

export interface StartedBatch {
  batchId: string;
  runId: string;
  handle: WorkflowHandle<typeof syncBatch>;
  manifestPath: string;
}

/**
 * Starts `syncBatch` over a normalised manifest already written; the manifest is removed when
 * the start is refused (a batch id in use: WorkflowExecutionAlreadyStartedError).
 */
export async function startPreparedBatch(
  client: Client,
  prepared: PreparedManifest,
  opts: StartBatchOptions,
): Promise<StartedBatch> {
  const { manifestPath, total } = prepared;
  const removeManifest = () => removeNormalizedManifest(manifestPath);
  let batchId: string;
  let policy: BatchPolicy;
  try {
    batchId = validateBatchId(opts.batchId ?? newBatchId());
    policy = validatePolicy(opts.policy);
  } catch (err) {
    await removeManifest();
    throw err;
  }
  const input: SyncBatchInput = { batchId, manifestPath, total, policy };
  if (opts.continueAsNewAfterEvents !== undefined) input.continueAsNewAfterEvents = opts.continueAsNewAfterEvents;
  if (opts.pageSize !== undefined) input.pageSize = opts.pageSize;
  if (opts.failuresKept !== undefined) input.failuresKept = opts.failuresKept;
  if (opts.limits && Object.values(opts.limits).some((v) => v !== undefined)) input.limits = opts.limits;
  if (opts.notify && opts.notify.urls.length > 0) input.notify = opts.notify;
  let handle: WorkflowHandleWithFirstExecutionRunId<typeof syncBatch>;
  try {
    handle = await client.workflow.start<typeof syncBatch>(BATCH_WORKFLOW_TYPE, {
      workflowId: batchWorkflowId(batchId),
      taskQueue: opts.taskQueue,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      staticSummary: `image-sync batch ${batchId}: ${total} files, max concurrency ${policy.maxConcurrency}, max resends ${policy.maxResends}${policy.atomic ? ', atomic' : ''}`,
      typedSearchAttributes: [
        { key: SA_BATCH_ID, value: batchId },
        { key: SA_STATE, value: 'RUNNING' },
        { key: SA_FILES_TOTAL, value: total },
        { key: SA_FILES_FAILED, value: 0 },
      ],
    });
  } catch (err) {
    await removeManifest();
    throw err;
  }
  return { batchId, runId: handle.firstExecutionRunId, handle, manifestPath };
}
