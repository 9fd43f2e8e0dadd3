/**
 * The activities of syncBatch and syncFile, made by a factory so the worker gives them
 * production dependencies and tests give them local ones.
 *
 * Every ledger write is idempotent (keyed by interaction id and an event key), so Temporal's
 * retries of an activity write each row once. Image bytes stream from disk to the recording
 * system here; only references and small results go back to the workflows.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { UnknownTargetError, type Targets } from '../config/targets';
import type { Ledger } from '../ledger/port';
import { RecordingSystemError, type Receipt, type RecordingSystem } from '../recording-system/port';
import {
  fileKey,
  scheduleBatchPrefix,
  type BatchState,
  type FileOutcome,
  type LedgerTotals,
  type SyncItem,
} from '../shared';
import { contentTypeFor, sha256File } from '../source/files';
import { scanDirectory } from '../source/manifest';
import { readItemsPage, writeNormalizedManifest } from '../source/normalized';

export interface ActivityDeps {
  ledger: Ledger;
  targets: Targets;
  /** How often long activities heartbeat, in milliseconds. */
  heartbeatEveryMs?: number;
}

/** Why a rollback leaves a file in place: image-sync removes only copies it wrote. */
export const FOREIGN_COPY = 'the recording system holds a copy another sender wrote; it was left in place';

export type VerifyRule = 'missing' | 'size' | 'checksum' | 'idempotency-key';
export type Verdict = { ok: true } | { ok: false; rule: VerifyRule; detail: string };

interface FileRef {
  interactionId: string;
  batchId: string;
  item: SyncItem;
}

/** Maps a recording-system error to the failure type the workflows act on. */
export function toFailure(err: unknown): unknown {
  if (!(err instanceof RecordingSystemError)) return err;
  const type = {
    conflict: 'Conflict',
    rejected: 'Rejected',
    unauthorized: 'Unauthorized',
    unavailable: 'Unavailable',
    timeout: 'Timeout',
    network: 'Network',
    protocol: 'Protocol',
  }[err.kind];
  const details = err.httpStatus ? [{ httpStatus: err.httpStatus }] : [];
  // 'protocol' covers answers outside the contract and requests refused before sending (names
  // or headers HTTP cannot carry): no retry of the same request changes either.
  return err.retryable
    ? ApplicationFailure.retryable(err.message, type, ...details)
    : ApplicationFailure.nonRetryable(err.message, type, ...details);
}

/** Runs `fn` while heartbeating, and passes it the activity's cancellation signal. */
async function withHeartbeat<T>(everyMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  heartbeat();
  const timer = setInterval(() => heartbeat(), everyMs);
  try {
    return await fn(ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

export function createActivities(deps: ActivityDeps) {
  const { ledger, targets } = deps;
  const heartbeatEveryMs = deps.heartbeatEveryMs ?? 2_000;

  /** The recording system of a target; an unknown target is bad input no retry can fix. */
  function systemFor(target: string | undefined): RecordingSystem {
    try {
      return targets.get(target);
    } catch (err) {
      if (err instanceof UnknownTargetError) throw ApplicationFailure.nonRetryable(err.message, 'UnknownTarget');
      throw err;
    }
  }

  /**
   * Who wrote the copy a receipt describes: this interaction; another image-sync interaction
   * for the same file (an earlier batch that recorded it); or another sender.
   */
  async function writerOf(
    receipt: Receipt,
    item: SyncItem,
    interactionId: string,
  ): Promise<'this' | 'sibling' | 'foreign'> {
    if (receipt.idempotencyKey === interactionId) return 'this';
    const row = await ledger.getInteraction(receipt.idempotencyKey);
    return row !== undefined && row.order_id === item.orderId && row.file_name === item.fileName
      ? 'sibling'
      : 'foreign';
  }

  /**
   * Removes the copy this interaction wrote, and checks it is gone. A copy another interaction
   * or another sender wrote is left in place: it is not this interaction's to roll back.
   */
  async function removeOwnCopy(
    system: RecordingSystem,
    item: SyncItem,
    interactionId: string,
    signal: AbortSignal,
  ): Promise<'gone' | 'sibling' | 'foreign'> {
    const receipt = await system.stat(item.orderId, item.fileName, { signal });
    if (!receipt) return 'gone';
    const writer = await writerOf(receipt, item, interactionId);
    if (writer !== 'this') return writer;
    await system.remove(item.orderId, item.fileName, { signal });
    if (await system.stat(item.orderId, item.fileName, { signal })) {
      throw ApplicationFailure.retryable(
        `${item.orderId}/${item.fileName} is still held after DELETE`,
        'RemoveNotEffective',
      );
    }
    return 'gone';
  }

  async function countTotals(batchId: string): Promise<LedgerTotals> {
    const latest = await ledger.latestInteractions(batchId);
    const count = (status: string) => latest.filter((r) => r.status === status).length;
    const rolledBack = count('ROLLED_BACK');
    return { recorded: count('RECORDED'), rolledBack, failed: rolledBack + count('ROLLBACK_FAILED') };
  }

  /**
   * Writes how a rollback ended: the rollback row, the event, and the interaction's state
   * (the given final state when DONE, ROLLBACK_FAILED when FAILED).
   */
  async function recordRollbackOutcome(
    rollback: { interactionId: string; batchId: string; orderId: string; fileName: string; reason: string },
    outcome:
      | { status: 'DONE'; finalState: FileOutcome; attempts: number; detail: Record<string, unknown> }
      | { status: 'FAILED'; attempts: number; error: string },
  ): Promise<void> {
    const { interactionId } = rollback;
    await ledger.recordRollback({ ...rollback, status: outcome.status, attempts: outcome.attempts });
    if (outcome.status === 'DONE') {
      await ledger.appendEvent({ interactionId, eventKey: 'ROLLED_BACK', kind: 'ROLLED_BACK', detail: outcome.detail });
      await ledger.updateInteraction(interactionId, { status: outcome.finalState, lastError: rollback.reason });
    } else {
      await ledger.appendEvent({
        interactionId,
        eventKey: 'ROLLBACK_FAILED',
        kind: 'ROLLBACK_FAILED',
        detail: { error: outcome.error },
      });
      await ledger.updateInteraction(interactionId, { status: 'ROLLBACK_FAILED', lastError: outcome.error });
    }
  }

  return {
    /** A page of the batch's normalised manifest. */
    async loadItems(args: { manifestPath: string; offset: number; limit: number }): Promise<SyncItem[]> {
      return readItemsPage(args.manifestPath, args.offset, args.limit);
    },

    async openBatch(args: { batchId: string; workflowId: string; total: number }): Promise<void> {
      // A redrive run of an ended batch reopens its row; the batch's total stays the first run's.
      await ledger.ensureBatch({ ...args, state: 'RUNNING' });
      await ledger.updateBatch(args.batchId, { state: 'RUNNING', finished: false });
    },

    /** Records the batch's end state; the counts come from the ledger's own rows. */
    async finishBatch(args: { batchId: string; state: BatchState }): Promise<LedgerTotals> {
      const totals = await countTotals(args.batchId);
      await ledger.updateBatch(args.batchId, { state: args.state, ...totals, finished: true });
      return totals;
    },

    /** Records a new interaction before any byte is sent: its id is the idempotency key. */
    async openInteraction(args: FileRef & { attempt: number }): Promise<{ seq: number }> {
      const { item } = args;
      const opened = await ledger.openInteraction({
        interactionId: args.interactionId,
        batchId: args.batchId,
        orderId: item.orderId,
        fileName: item.fileName,
        target: targets.resolveName(item.target),
        sourcePath: item.sourcePath,
        sha256: item.sha256 ?? '',
        sizeBytes: 0,
        status: 'SENDING',
      });
      await ledger.appendEvent({
        interactionId: args.interactionId,
        eventKey: 'OPENED',
        kind: 'OPENED',
        detail: { seq: opened.seq, redrive: args.attempt },
      });
      return opened;
    },

    /**
     * Streams the file to its recording system. Checks the source first (present, and matching
     * the manifest's sha256 when one was given); replaces a bad copy this file's own
     * interactions left behind.
     */
    async sendFile(args: FileRef & { resend: number }): Promise<{ sha256: string; size: number; httpStatus: number }> {
      const { item, interactionId } = args;
      const system = systemFor(item.target);
      const attempt = Context.current().info.attempt;
      return withHeartbeat(heartbeatEveryMs, async (signal) => {
        const source = await stat(item.sourcePath).catch(() => undefined);
        if (!source?.isFile()) {
          throw ApplicationFailure.nonRetryable(`source file ${item.sourcePath} is missing`, 'SourceMissing');
        }
        const digest = await sha256File(item.sourcePath, signal);
        if (item.sha256 && item.sha256 !== digest.sha256) {
          throw ApplicationFailure.nonRetryable(
            `source ${item.sourcePath} has sha256 ${digest.sha256}, the manifest says ${item.sha256}`,
            'SourceChecksumMismatch',
          );
        }
        await ledger.updateInteraction(interactionId, {
          sha256: digest.sha256,
          sizeBytes: digest.size,
          status: 'SENDING',
        });
        const put = () =>
          system.put({
            orderId: item.orderId,
            fileName: item.fileName,
            sourcePath: item.sourcePath,
            sha256: digest.sha256,
            size: digest.size,
            contentType: item.contentType ?? contentTypeFor(item.fileName),
            idempotencyKey: interactionId,
            signal,
          });
        try {
          let result;
          try {
            result = await put();
          } catch (err) {
            // A 409 over a copy of our own (a corrupted earlier send) is replaced, never a foreign one.
            if (!(err instanceof RecordingSystemError && err.kind === 'conflict')) throw err;
            if ((await removeOwnCopy(system, item, interactionId, signal)) !== 'gone') throw err;
            result = await put();
          }
          await ledger.appendEvent({
            interactionId,
            eventKey: `SENT:${args.resend}`,
            kind: 'SENT',
            detail: {
              resend: args.resend,
              attempt,
              httpStatus: result.httpStatus,
              outcome: result.outcome,
              size: digest.size,
            },
          });
          await ledger.updateInteraction(interactionId, { status: 'VERIFYING' });
          return { ...digest, httpStatus: result.httpStatus };
        } catch (err) {
          if (signal.aborted) throw err;
          await ledger.appendEvent({
            interactionId,
            eventKey: `SEND_FAILED:${args.resend}:${attempt}`,
            kind: 'SEND_FAILED',
            detail: { resend: args.resend, attempt, error: err instanceof Error ? err.message : String(err) },
          });
          await ledger.updateInteraction(interactionId, {
            lastError: err instanceof Error ? err.message : String(err),
          });
          throw toFailure(err);
        }
      });
    },

    /** Applies the preset rules to the recording system's receipt; records RECORDED when all pass. */
    async verifyFile(args: FileRef & { sha256: string; size: number; resend?: number }): Promise<Verdict> {
      const { item, interactionId } = args;
      const system = systemFor(item.target);
      let receipt: Receipt | null;
      try {
        receipt = await system.stat(item.orderId, item.fileName, { signal: Context.current().cancellationSignal });
      } catch (err) {
        throw toFailure(err);
      }
      let verdict = judge(receipt, args);
      let heldBy: string | undefined;
      if (
        !verdict.ok &&
        verdict.rule === 'idempotency-key' &&
        (await writerOf(receipt!, item, interactionId)) === 'sibling'
      ) {
        // The same bytes, recorded by an earlier interaction for this file (an earlier batch):
        // the file is delivered. That interaction keeps its record.
        heldBy = receipt!.idempotencyKey;
        verdict = { ok: true };
      }
      const resend = args.resend ?? (await ledger.getInteraction(interactionId))?.resends ?? 0;
      if (verdict.ok) {
        await ledger.appendEvent({
          interactionId,
          eventKey: `VERIFIED:${resend}`,
          kind: 'VERIFIED',
          detail: heldBy ? { resend, heldBy } : { resend },
        });
        await ledger.updateInteraction(interactionId, { status: 'RECORDED', lastError: null });
      } else {
        await ledger.appendEvent({
          interactionId,
          eventKey: `VERIFY_FAILED:${resend}`,
          kind: 'VERIFY_FAILED',
          detail: { resend, rule: verdict.rule, detail: verdict.detail },
        });
        await ledger.updateInteraction(interactionId, { lastError: `${verdict.rule}: ${verdict.detail}` });
      }
      return verdict;
    },

    async noteResend(args: { interactionId: string; resends: number; reason: string }): Promise<void> {
      await ledger.appendEvent({
        interactionId: args.interactionId,
        eventKey: `RESEND_QUEUED:${args.resends}`,
        kind: 'RESEND_QUEUED',
        detail: { resends: args.resends, reason: args.reason },
      });
      await ledger.updateInteraction(args.interactionId, {
        status: 'RESENDING',
        resends: args.resends,
        lastError: args.reason,
      });
    },

    /**
     * Rolls a file back at its recording system and records the rollback. Removes only a copy
     * one of this file's own interactions wrote; a foreign file is left and the rollback FAILED.
     */
    async compensate(
      args: FileRef & { reason: string; finalState: FileOutcome },
    ): Promise<{ status: 'DONE' | 'FAILED'; detail: string }> {
      const { item, interactionId } = args;
      const attempt = Context.current().info.attempt;
      const rollback = {
        interactionId,
        batchId: args.batchId,
        orderId: item.orderId,
        fileName: item.fileName,
        reason: args.reason,
      };
      await ledger.appendEvent({
        interactionId,
        eventKey: 'ROLLBACK_STARTED',
        kind: 'ROLLBACK_STARTED',
        detail: { reason: args.reason },
      });
      await ledger.updateInteraction(interactionId, { status: 'ROLLING_BACK' });
      if (!targets.has(item.target)) {
        // Nothing can have been sent to a target that does not exist.
        await recordRollbackOutcome(rollback, {
          status: 'DONE',
          finalState: args.finalState,
          attempts: attempt,
          detail: { unknownTarget: targets.resolveName(item.target) },
        });
        return { status: 'DONE', detail: 'unknown target: nothing was sent' };
      }
      const system = targets.get(item.target);
      let outcome: 'gone' | 'sibling' | 'foreign';
      try {
        outcome = await withHeartbeat(heartbeatEveryMs, (signal) => removeOwnCopy(system, item, interactionId, signal));
      } catch (err) {
        await ledger.appendEvent({
          interactionId,
          eventKey: `ROLLBACK_ATTEMPT_FAILED:${attempt}`,
          kind: 'ROLLBACK_ATTEMPT_FAILED',
          detail: { attempt, error: err instanceof Error ? err.message : String(err) },
        });
        throw toFailure(err);
      }
      if (outcome === 'foreign') {
        await recordRollbackOutcome(rollback, { status: 'FAILED', attempts: attempt, error: FOREIGN_COPY });
        return { status: 'FAILED', detail: FOREIGN_COPY };
      }
      // 'sibling': the file is held as an earlier batch recorded it; nothing of this interaction's.
      await recordRollbackOutcome(rollback, {
        status: 'DONE',
        finalState: args.finalState,
        attempts: attempt,
        detail:
          outcome === 'gone'
            ? { attempts: attempt }
            : { attempts: attempt, leftInPlace: 'recorded by an earlier interaction' },
      });
      return {
        status: 'DONE',
        detail: outcome === 'gone' ? 'removed' : 'held as an earlier interaction recorded it; left in place',
      };
    },

    /** Records a rollback that could not be done after every attempt: it needs a person. */
    async recordRollbackFailed(args: FileRef & { reason: string; attempts: number; error: string }): Promise<void> {
      const { item } = args;
      await recordRollbackOutcome(
        {
          interactionId: args.interactionId,
          batchId: args.batchId,
          orderId: item.orderId,
          fileName: item.fileName,
          reason: args.reason,
        },
        { status: 'FAILED', attempts: args.attempts, error: args.error },
      );
    },

    /** A file cancelled before any byte was sent: nothing to roll back. */
    async markCancelled(args: { interactionId: string; reason: string }): Promise<void> {
      await ledger.appendEvent({
        interactionId: args.interactionId,
        eventKey: 'CANCELLED',
        kind: 'CANCELLED',
        detail: { reason: args.reason },
      });
      await ledger.updateInteraction(args.interactionId, { status: 'CANCELLED', lastError: args.reason });
    },

    /**
     * Scans a schedule's folder for the files no earlier run of the schedule recorded, leaving
     * the ones modified in the last settleMs for the next run, and writes their manifest.
     */
    async prepareScheduledBatch(args: {
      scheduleId: string;
      dir: string;
      stateDir: string;
      batchId: string;
      settleMs: number;
    }): Promise<{ manifestPath: string; total: number; skippedInvalid: number }> {
      const scanned = await scanDirectory(args.dir);
      const done = new Set(
        (await ledger.recordedFilesOfBatches(scheduleBatchPrefix(args.scheduleId))).map((f) =>
          fileKey(f.orderId, f.fileName),
        ),
      );
      const settledBefore = Date.now() - args.settleMs;
      const fresh: SyncItem[] = [];
      for (const item of scanned.items) {
        if (done.has(fileKey(item.orderId, item.fileName))) continue;
        const st = await stat(item.sourcePath).catch(() => undefined);
        if (st && st.mtimeMs <= settledBefore) fresh.push(item);
      }
      const manifestPath = path.join(args.stateDir, 'manifests', `${args.batchId}.ndjson`);
      if (fresh.length > 0) await writeNormalizedManifest(fresh, manifestPath);
      return { manifestPath, total: fresh.length, skippedInvalid: scanned.errors.length };
    },

    /** Whether a recording system answers an authenticated request at all. */
    async probeRecordingSystem(args: { target: string }): Promise<void> {
      try {
        await systemFor(args.target).list({ limit: 1, signal: Context.current().cancellationSignal });
      } catch (err) {
        throw toFailure(err);
      }
    },

    /** Atomic batches: rolls back every file of the batch that is still RECORDED. */
    async rollbackRecordedFiles(args: {
      batchId: string;
      reason: string;
    }): Promise<{ rolledBack: number; failed: number }> {
      const ctx = Context.current();
      const recorded = await ledger.listBatchFilesByStatus(args.batchId, 'RECORDED');
      let rolledBack = 0;
      let failed = 0;
      for (const [i, row] of recorded.entries()) {
        ctx.heartbeat({ done: i, of: recorded.length });
        const item: SyncItem = {
          orderId: row.order_id,
          fileName: row.file_name,
          sourcePath: row.source_path,
          target: row.target,
        };
        const rollback = {
          interactionId: row.interaction_id,
          batchId: args.batchId,
          orderId: row.order_id,
          fileName: row.file_name,
          reason: args.reason,
        };
        await ledger.appendEvent({
          interactionId: row.interaction_id,
          eventKey: 'ROLLBACK_STARTED',
          kind: 'ROLLBACK_STARTED',
          detail: { reason: args.reason },
        });
        let outcome: 'gone' | 'sibling' | 'foreign' | 'error';
        let detail = '';
        try {
          outcome = await removeOwnCopy(targets.get(row.target), item, row.interaction_id, ctx.cancellationSignal);
        } catch (err) {
          outcome = 'error';
          detail = err instanceof Error ? err.message : String(err);
        }
        if (outcome === 'gone') {
          await recordRollbackOutcome(rollback, {
            status: 'DONE',
            finalState: 'ROLLED_BACK',
            attempts: 1,
            detail: { atomic: true },
          });
          rolledBack += 1;
        } else {
          await recordRollbackOutcome(rollback, { status: 'FAILED', attempts: 1, error: detail || FOREIGN_COPY });
          failed += 1;
        }
      }
      return { rolledBack, failed };
    },
  };
}

/** The preset verification rules, in order: missing, size, checksum, idempotency key. */
export function judge(
  receipt: Receipt | null,
  expected: { sha256: string; size: number; interactionId: string },
): Verdict {
  if (!receipt) return { ok: false, rule: 'missing', detail: 'the recording system holds no such file' };
  if (receipt.size !== expected.size) {
    return { ok: false, rule: 'size', detail: `holds ${receipt.size} bytes, sent ${expected.size}` };
  }
  if (receipt.sha256 !== expected.sha256) {
    return { ok: false, rule: 'checksum', detail: `holds sha256 ${receipt.sha256}, sent ${expected.sha256}` };
  }
  if (receipt.idempotencyKey !== expected.interactionId) {
    return { ok: false, rule: 'idempotency-key', detail: `held under key ${receipt.idempotencyKey}` };
  }
  return { ok: true };
}

export type Activities = ReturnType<typeof createActivities>;
