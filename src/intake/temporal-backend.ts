/**
 * The intake's workflow side behind the IntakeBackend seam (./backend.ts): a submission is
 * recorded in the ledger by its idempotency key, then handed to the intake workflow of each of
 * its targets by Update-with-Start (the intake is started when none runs; USE_EXISTING
 * otherwise), and the answer is given once the workflow has the files (202: durable in Temporal).
 *
 * One intake workflow per target, not per order (see src/workflows/intake.ts): the number of
 * long-running workflows stays that of the targets file, and a target's pause, limits and
 * outage pause apply to every file sent to it, as on a batch.
 *
 * A submission is delivered once, whatever the platform retries:
 * - the ledger holds each key with its body's hash (queries/intake.ts): the same key with
 *   another body is `key_reused` (422); a key another request is still taking is `in_progress`
 *   (409); an accepted key is `accepted` again with `replayed` and hands nothing over;
 * - the key is also the update id, so a hand-over repeated after a lost answer is the same
 *   update to the same run; and the intake remembers its latest keys across its runs, so a
 *   repeat after it continued as new takes nothing either;
 * - a file sent again regardless (submitted under a new key) is RECORDED without a second upload
 *   when the target already holds its bytes (the per-file claim, docs/one-truth.md).
 *
 * Backpressure: an intake holds at most `maxWaiting` files not yet started; its update's
 * validator refuses a submission that would pass that, before it enters history, and the
 * answer is `saturated` with a Retry-After. Temporal out of reach (or answering nothing before
 * `submitTimeoutMs`) is `unavailable`. In both cases the key is released in the ledger, so the
 * retry takes it afresh; a target whose hand-over had already succeeded sees the same update id
 * again and takes nothing twice.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowIdConflictPolicy,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Semaphore } from '../config/targets';
import { errorText } from '../errors';
import type { Ledger } from '../ledger/port';
import { DEFAULT_POLICY, SA_BATCH_ID, SA_TARGET, type BatchPolicy, type NotifyOptions, type SyncItem } from '../shared';
import type { intake } from '../workflows/intake';
import type {
  IntakeBackend,
  IntakeFile,
  IntakeFileStatus,
  IntakeOrderStatus,
  IntakeSubmission,
  SubmitOutcome,
} from './backend';
import {
  DEFAULT_MAX_WAITING,
  DEFAULT_MAX_WAITING_BYTES,
  INTAKE_CLOSED_FAILURE,
  INTAKE_PRIORITY_KEY,
  INTAKE_WORKFLOW_TYPE,
  SATURATED_FAILURE,
  intakeBatchId,
  intakeWorkflowIdOf,
  submitUpdate,
  type IntakeInput,
  type IntakeReceipt,
} from './workflow-api';

/** The target of a file that names none. */
export const DEFAULT_TARGET = 'default';
/** How long a request holds a key it is taking before another request may take it over. */
export const DEFAULT_TAKE_LEASE_MS = 2 * 60_000;
/** How long one submission waits for Temporal before it is answered `unavailable`. */
export const DEFAULT_SUBMIT_TIMEOUT_MS = 20_000;
/**
 * Hand-overs (updates) to one target's intake in flight at once from this server; the others wait
 * their turn. Temporal admits at most 10 updates in flight per workflow (`history.maxInFlightUpdates`)
 * and refuses the rest; and a crowd of updates retried against one workflow starves its own
 * progress (its children's starts wait on the same workflow), so the queue is kept here.
 */
export const DEFAULT_MAX_HAND_OVERS = 8;
/** The Retry-After of a saturated answer, in seconds. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

export interface IntakeBackendDeps {
  client: Client;
  ledger: Ledger;
  taskQueue: string;
  /** The policy an intake starts with (the batch defaults, with every failure tolerated, under it). */
  policy?: Partial<BatchPolicy>;
  /** Files waiting in one intake at most (DEFAULT_MAX_WAITING). */
  maxWaiting?: number;
  /** The same, in bytes as the intake carries them (DEFAULT_MAX_WAITING_BYTES). */
  maxWaitingBytes?: number;
  /** Where the intakes POST their events. */
  notify?: NotifyOptions;
  submitTimeoutMs?: number;
  takeLeaseMs?: number;
  retryAfterSeconds?: number;
  /** Hand-overs to one target's intake in flight at once (DEFAULT_MAX_HAND_OVERS). */
  maxHandOvers?: number;
  /** An intake continues as new once a run's history holds this many events (the workflow's default when absent). */
  continueAsNewAfterEvents?: number;
  /**
   * The ledger batch (and so the workflow id) of a target's intake: intakeBatchId (`intake-<target>`)
   * by default. Tests sharing one Temporal namespace give each test its own.
   */
  batchIdFor?: (target: string) => string;
  /** Called by close(): what the backend was given to own (the client's connection, the ledger). */
  onClose?: () => Promise<void>;
}

/** The policy of an intake: a batch's, but an intake never stops for its failures. */
export function intakePolicy(given: Partial<BatchPolicy> = {}): BatchPolicy {
  return { ...DEFAULT_POLICY, ...given, toleratedFailurePercent: 100, atomic: false };
}

function targetOf(f: IntakeFile): string {
  return f.target ?? DEFAULT_TARGET;
}

function itemOf(orderId: string, f: IntakeFile): SyncItem {
  return {
    orderId,
    fileName: f.fileName,
    sourcePath: f.sourcePath,
    target: targetOf(f),
    ...(f.sha256 ? { sha256: f.sha256 } : {}),
    ...(f.contentType ? { contentType: f.contentType } : {}),
  };
}

/** How a hand-over to one intake failed, when it did. */
type HandOverFailure = { kind: 'saturated'; reason: string } | { kind: 'unavailable'; reason: string };

export function createIntakeBackend(deps: IntakeBackendDeps): IntakeBackend {
  const { client, ledger, taskQueue } = deps;
  const policy = intakePolicy(deps.policy);
  const maxWaiting = deps.maxWaiting ?? DEFAULT_MAX_WAITING;
  const maxWaitingBytes = deps.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES;
  const timeoutMs = deps.submitTimeoutMs ?? DEFAULT_SUBMIT_TIMEOUT_MS;
  const leaseMs = deps.takeLeaseMs ?? DEFAULT_TAKE_LEASE_MS;
  const retryAfterSeconds = deps.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  const batchIdFor = deps.batchIdFor ?? intakeBatchId;
  const maxHandOvers = deps.maxHandOvers ?? DEFAULT_MAX_HAND_OVERS;
  if (!Number.isInteger(maxHandOvers) || maxHandOvers < 1)
    throw new Error('maxHandOvers must be a whole number of 1 or more');
  const gates = new Map<string, Semaphore>();

  async function handOver(
    target: string,
    parcel: { idempotencyKey: string; orderId: string; files: SyncItem[] },
    deadline: number,
  ): Promise<IntakeReceipt | HandOverFailure> {
    const batchId = batchIdFor(target);
    const input: IntakeInput = {
      target,
      batchId,
      policy,
      maxWaiting,
      maxWaitingBytes,
      ...(deps.notify ? { notify: deps.notify } : {}),
      ...(deps.continueAsNewAfterEvents ? { continueAsNewAfterEvents: deps.continueAsNewAfterEvents } : {}),
    };
    for (let attempt = 1; ; attempt++) {
      const start = new WithStartWorkflowOperation<typeof intake>(INTAKE_WORKFLOW_TYPE, {
        workflowId: intakeWorkflowIdOf(batchId),
        taskQueue,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        // Its workflow tasks (each submission's update) go ahead of bulk batches, as its files do.
        priority: { priorityKey: INTAKE_PRIORITY_KEY },
        staticSummary: `intake → ${target}`,
        typedSearchAttributes: [
          { key: SA_BATCH_ID, value: batchId },
          { key: SA_TARGET, value: target },
        ],
      });
      try {
        return await client.withDeadline(deadline, () =>
          client.workflow.executeUpdateWithStart(submitUpdate, {
            updateId: parcel.idempotencyKey,
            // This server's bounds apply to an intake already running too.
            args: [{ ...parcel, bounds: { maxWaiting, maxWaitingBytes } }],
            startWorkflowOperation: start,
          }),
        );
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const cause = err.cause;
          if (cause instanceof ApplicationFailure && cause.type === SATURATED_FAILURE) {
            return { kind: 'saturated', reason: cause.message };
          }
          if (cause instanceof ApplicationFailure && cause.type === INTAKE_CLOSED_FAILURE) {
            return { kind: 'unavailable', reason: `${cause.message}; try again once it has ended` };
          }
          return { kind: 'unavailable', reason: `the intake refused the submission: ${errorText(cause ?? err)}` };
        }
        // The intake may have been continuing as new or ending meanwhile: the next try reaches its new run.
        if (attempt < 3 && Date.now() < deadline - 1_000 && mayRetry(err)) continue;
        return { kind: 'unavailable', reason: `Temporal: ${errorText(err)}` };
      }
    }
  }

  return {
    async submit(submission: IntakeSubmission): Promise<SubmitOutcome> {
      const { orderId, idempotencyKey, bodySha256 } = submission;
      const taker = randomUUID();
      const record = {
        idempotencyKey,
        orderId,
        bodySha256,
        taker,
        files: submission.files.map((f) => ({ fileName: f.fileName, target: targetOf(f), sourcePath: f.sourcePath })),
      };
      let taken;
      try {
        taken = await ledger.takeSubmission(record, leaseMs);
      } catch (err) {
        return { kind: 'unavailable', reason: `ledger: ${errorText(err)}` };
      }
      if (taken.kind === 'accepted') return { kind: 'accepted', submissionId: idempotencyKey, replayed: true };
      if (taken.kind !== 'taken') return { kind: taken.kind };

      const byTarget = new Map<string, SyncItem[]>();
      for (const f of submission.files) {
        const target = targetOf(f);
        byTarget.set(target, [...(byTarget.get(target) ?? []), itemOf(orderId, f)]);
      }
      const deadline = Date.now() + timeoutMs;
      let replayedEverywhere = true;
      for (const [target, files] of byTarget) {
        const gate = gates.get(target) ?? gates.set(target, new Semaphore(maxHandOvers)).get(target)!;
        let outcome: IntakeReceipt | HandOverFailure;
        if (await gate.acquire(deadline)) {
          try {
            outcome = await handOver(target, { idempotencyKey, orderId, files }, deadline);
          } finally {
            gate.release();
          }
        } else {
          outcome = { kind: 'saturated', reason: `submissions to target ${target} queue past the submit timeout` };
        }
        if ('kind' in outcome) {
          await ledger.releaseSubmission(idempotencyKey, taker).catch(() => undefined);
          return outcome.kind === 'saturated'
            ? { kind: 'saturated', retryAfterSeconds, reason: outcome.reason }
            : { kind: 'unavailable', reason: outcome.reason };
        }
        if (!outcome.replayed) replayedEverywhere = false;
      }
      // The files are durable in the intakes now; a ledger that fails this note leaves the key
      // TAKING, and a retry after the lease hands over again, which the intakes take as a replay.
      await ledger.acceptSubmission(record).catch(() => undefined);
      return { kind: 'accepted', submissionId: idempotencyKey, replayed: taken.takeover && replayedEverywhere };
    },

    async orderStatus(orderId: string): Promise<IntakeOrderStatus | undefined> {
      const submitted = await ledger.submittedFiles(orderId);
      if (submitted.length === 0) return undefined;
      const targets = [...new Set(submitted.map((f) => f.target))];
      const rows = await ledger.latestInteractionsOfOrder(
        targets.map((t) => batchIdFor(t)),
        orderId,
      );
      const latest = new Map(rows.map((r) => [`${r.batch_id}\u0000${r.file_name}`, r]));
      const files: IntakeFileStatus[] = submitted.map((f) => {
        const row = latest.get(`${batchIdFor(f.target)}\u0000${f.fileName}`);
        if (!row && f.droppedAt) {
          return {
            fileName: f.fileName,
            target: f.target,
            state: 'CANCELLED',
            interactionId: null,
            resends: 0,
            reason: 'the intake was cancelled before the file started; submit it again',
            updatedAt: f.droppedAt,
          };
        }
        if (!row) {
          return {
            fileName: f.fileName,
            target: f.target,
            state: 'ACCEPTED',
            interactionId: null,
            resends: 0,
            updatedAt: f.submittedAt,
          };
        }
        return {
          fileName: f.fileName,
          target: f.target,
          state: row.status,
          interactionId: row.interaction_id,
          resends: row.resends,
          ...(row.last_error && row.status !== 'RECORDED' ? { reason: row.last_error } : {}),
          updatedAt: row.updated_at,
        };
      });
      return { orderId, files };
    },

    async ready(): Promise<{ ok: boolean; reason?: string }> {
      try {
        await ledger.listBatches({ limit: 1 });
      } catch (err) {
        return { ok: false, reason: `ledger: ${errorText(err)}` };
      }
      try {
        await client.withDeadline(Date.now() + 5_000, () =>
          client.workflowService.describeNamespace({ namespace: client.options.namespace }),
        );
      } catch (err) {
        return { ok: false, reason: `Temporal: ${errorText(err)}` };
      }
      return { ok: true };
    },

    async close(): Promise<void> {
      await deps.onClose?.();
    },
  };
}

/** Errors after which the hand-over is tried again: the intake run closed under it, or the server answered busy. */
function mayRetry(err: unknown): boolean {
  const text = errorText(err);
  return /already completed|workflow execution.*(completed|closed)|not found|continued as new|unavailable|resource exhausted/i.test(
    text,
  );
}
