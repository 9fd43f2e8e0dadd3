/**
 * Starting a batch: read and validate the input, write the normalised manifest the workers read
 * in pages, and start `syncBatch` under its business id. A second start of a running or finished
 * batch id is rejected rather than doing the work twice.
 */
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
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
import type { ManifestError, ParsedManifest } from '../source/port';
import { checkSourceFiles } from '../source/files';
import { formatManifestErrors } from '../source/input-errors';
import { readManifest } from '../source/manifest';
import { scanDirectory } from '../source/scan';
import { pageIndexPath, writeNormalizedManifest } from '../source/normalized';
import { mapWithConcurrency } from '../source/concurrency';
import type { TargetNames } from '../config/target-names';
import { errorText } from '../errors';
import type { syncBatch } from '../workflows/sync-batch';

export const DEFAULT_STATE_DIR = '.image-sync';

export class InputError extends Error {
  constructor(
    message: string,
    readonly errors: ManifestError[] = [],
  ) {
    super(message);
    this.name = 'InputError';
  }
}

export interface LoadedInput {
  items: SyncItem[];
  /** Lines skipped with --skip-invalid. */
  skipped: ManifestError[];
}

/** Why an item's target (its own, or the default) is not among `targets`; null when it is. */
function targetProblem(item: SyncItem, targets: TargetNames): string | null {
  const name = item.target ?? targets.defaultTarget;
  if (targets.names.includes(name)) return null;
  const configured = targets.names.join(', ') || 'none';
  return item.target === undefined
    ? `the default target "${name}" is not configured (configured: ${configured}), order ${item.orderId}, file ${item.fileName}`
    : `unknown target "${name}" (configured: ${configured})`;
}

/**
 * Reads a manifest or a folder; any invalid line stops the batch unless skipInvalid is set.
 * With `targets`, an item whose target is not configured is invalid too (field `target`).
 */
export async function loadInput(
  src: { manifest?: string; dir?: string },
  skipInvalid = false,
  opts: { targets?: TargetNames } = {},
): Promise<LoadedInput> {
  if (!src.manifest === !src.dir) throw new InputError('give exactly one of --manifest FILE or --dir DIR');
  let parsed: ParsedManifest;
  try {
    parsed = src.manifest ? await readManifest(src.manifest) : await scanDirectory(src.dir!);
  } catch (err) {
    throw new InputError(errorText(err));
  }
  const present = await mapWithConcurrency(parsed.items, 32, (item) =>
    stat(item.sourcePath).then(
      (st) => st.isFile(),
      () => false,
    ),
  );
  const absent = parsed.items.filter((_, i) => !present[i]);
  const missing = await checkSourceFiles(absent, { lines: parsed.lines?.filter((_, i) => !present[i]) });
  const targetProblems = parsed.items.map((item) => (opts.targets ? targetProblem(item, opts.targets) : null));
  const targetErrors: ManifestError[] = [];
  targetProblems.forEach((message, i) => {
    if (message !== null) targetErrors.push({ line: parsed.lines?.[i] ?? 0, field: 'target', message });
  });
  // In line order; the sort is stable, so errors of one line, and those without a line, keep theirs.
  const errors = [...parsed.errors, ...missing, ...targetErrors].sort((a, b) => a.line - b.line);
  if (errors.length > 0 && !skipInvalid) {
    throw new InputError(
      `${errors.length} invalid ${errors.length === 1 ? 'entry' : 'entries'}; nothing was started (use --skip-invalid to skip them):\n${formatManifestErrors(errors)}`,
      errors,
    );
  }
  const items = parsed.items.filter((_, i) => present[i] && targetProblems[i] === null);
  if (items.length === 0) throw new InputError('the input holds no file to send');
  return { items, skipped: errors };
}

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

export async function startBatch(
  client: Client,
  items: SyncItem[],
  opts: StartBatchOptions,
): Promise<{ batchId: string; runId: string; handle: WorkflowHandle<typeof syncBatch>; manifestPath: string }> {
  const batchId = validateBatchId(opts.batchId ?? newBatchId());
  const policy = validatePolicy(opts.policy);
  // A manifest of its own per start: a refused start must not touch a running batch's manifest.
  const manifestPath = path.resolve(
    opts.stateDir ?? DEFAULT_STATE_DIR,
    'manifests',
    `${batchId}.${Date.now().toString(36)}-${randomUUID().slice(0, 8)}.ndjson`,
  );
  await writeNormalizedManifest(items, manifestPath);
  const input: SyncBatchInput = { batchId, manifestPath, total: items.length, policy };
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
      staticSummary: `image-sync batch ${batchId}: ${items.length} files, max concurrency ${policy.maxConcurrency}, max resends ${policy.maxResends}${policy.atomic ? ', atomic' : ''}`,
      typedSearchAttributes: [
        { key: SA_BATCH_ID, value: batchId },
        { key: SA_STATE, value: 'RUNNING' },
        { key: SA_FILES_TOTAL, value: items.length },
        { key: SA_FILES_FAILED, value: 0 },
      ],
    });
  } catch (err) {
    await rm(manifestPath, { force: true });
    await rm(pageIndexPath(manifestPath), { force: true });
    throw err;
  }
  return { batchId, runId: handle.firstExecutionRunId, handle, manifestPath };
}
