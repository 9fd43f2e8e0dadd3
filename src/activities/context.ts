/**
 * What the activities of every role share: their dependencies, the mapping of errors to the
 * failure types the workflows act on (src/failures.ts), and who wrote a copy the recording
 * system holds.
 */
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { UnknownTargetError, type Targets } from '../config/targets';
import { FailureType, VERIFY_PHASE } from '../failures';
import type { Ledger } from '../ledger/port';
import { RecordingSystemError, type Receipt, type RecordingSystem } from '../recording-system/port';
import type { Pacer } from '../limits/pacer';
import type { SyncItem } from '../shared';

/** Told how long a send or a verification took, and how it ended (for the latency metrics). */
export type TransferObserver = (
  phase: 'send' | 'verify',
  target: string,
  result: 'ok' | 'failed' | 'error',
  seconds: number,
) => void;

export interface ActivityDeps {
  ledger: Ledger;
  targets: Targets;
  /** How often long activities heartbeat, in milliseconds. */
  heartbeatEveryMs?: number;
  /** Times the send and the verification inside deliverFile, which does both. */
  observeTransfer?: TransferObserver;
  /** Holds paced sends and verifications to the batch's limits; by default through the ledger. */
  pacer?: Pacer;
  /** Signs notifications (IMAGE_SYNC_NOTIFY_SECRET); unsigned when absent. */
  notifySecret?: string;
}

/** Runs one phase of a transfer and tells the observer how long it took and how it ended. */
export async function timed<T>(
  observe: TransferObserver | undefined,
  phase: 'send' | 'verify',
  target: string,
  run: () => Promise<T>,
  outcome: (value: T) => 'ok' | 'failed' = () => 'ok',
): Promise<T> {
  if (!observe) return run();
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const value = await run();
    observe(phase, target, outcome(value), seconds());
    return value;
  } catch (err) {
    observe(phase, target, 'error', seconds());
    throw err;
  }
}

/** One interaction of one file of a batch: what most activities are called about. */
export interface FileRef {
  interactionId: string;
  batchId: string;
  item: SyncItem;
}

const KIND_TO_TYPE: Record<RecordingSystemError['kind'], FailureType> = {
  conflict: FailureType.Conflict,
  rejected: FailureType.Rejected,
  unauthorized: FailureType.Unauthorized,
  unavailable: FailureType.Unavailable,
  timeout: FailureType.Timeout,
  network: FailureType.Network,
  protocol: FailureType.Protocol,
};

/**
 * Maps an error to the failure the workflows act on: recording-system errors by kind, ledger
 * outages as LedgerUnavailable (retryable); anything else is left as it is.
 */
export function toFailure(err: unknown): unknown {
  if (err instanceof RecordingSystemError) {
    const details = err.httpStatus ? [{ httpStatus: err.httpStatus }] : [];
    // 'protocol' covers answers outside the contract and requests refused before sending (names
    // or headers HTTP cannot carry): no retry of the same request changes either.
    return err.retryable
      ? ApplicationFailure.retryable(err.message, KIND_TO_TYPE[err.kind], ...details)
      : ApplicationFailure.nonRetryable(err.message, KIND_TO_TYPE[err.kind], ...details);
  }
  if (err instanceof Error && err.name === 'LedgerUnavailableError') {
    return ApplicationFailure.retryable(err.message, FailureType.LedgerUnavailable);
  }
  return err;
}

/** The failure of a verification that could not read the receipt, marked as such for the workflow. */
export function verifyFailure(err: unknown): unknown {
  const failure = toFailure(err);
  if (!(failure instanceof ApplicationFailure)) return failure;
  return ApplicationFailure.create({
    message: failure.message,
    type: failure.type ?? undefined,
    nonRetryable: failure.nonRetryable ?? undefined,
    details: [{ phase: VERIFY_PHASE }],
  });
}

/** Runs an activity body and throws its errors as the failures the workflows act on. */
export async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err);
  }
}

/** Runs `fn` while heartbeating, and passes it the activity's cancellation signal. */
export async function withHeartbeat<T>(everyMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  heartbeat();
  const timer = setInterval(() => heartbeat(), everyMs);
  try {
    return await fn(ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/** The recording system of a target; an unknown target is bad input no retry can fix. */
export function systemFor(targets: Targets, target: string | undefined): RecordingSystem {
  try {
    return targets.get(target);
  } catch (err) {
    if (err instanceof UnknownTargetError)
      throw ApplicationFailure.nonRetryable(err.message, FailureType.UnknownTarget);
    throw err;
  }
}

/**
 * Who wrote the copy a receipt describes: this interaction; another image-sync interaction
 * for the same file (an earlier batch that recorded it); or another sender.
 */
export async function writerOf(
  ledger: Ledger,
  receipt: Receipt,
  item: SyncItem,
  interactionId: string,
): Promise<'this' | 'sibling' | 'foreign'> {
  if (receipt.idempotencyKey === interactionId) return 'this';
  const row = await ledger.getInteraction(receipt.idempotencyKey);
  return row !== undefined && row.order_id === item.orderId && row.file_name === item.fileName ? 'sibling' : 'foreign';
}

export interface Digest {
  sha256: string;
  size: number;
}

/**
 * Records an interaction before any byte is sent: its id is the idempotency key. Idempotent:
 * a second call for the same interaction writes nothing.
 */
export async function openInteraction(
  deps: ActivityDeps,
  ref: FileRef & { attempt: number },
  digest?: Digest,
): Promise<void> {
  const { item } = ref;
  const opened = await deps.ledger.openInteraction({
    interactionId: ref.interactionId,
    batchId: ref.batchId,
    orderId: item.orderId,
    fileName: item.fileName,
    target: deps.targets.resolveName(item.target),
    sourcePath: item.sourcePath,
    sha256: digest?.sha256 ?? item.sha256 ?? '',
    sizeBytes: digest?.size ?? 0,
    status: 'SENDING',
  });
  await deps.ledger.appendEvent({
    interactionId: ref.interactionId,
    eventKey: 'OPENED',
    kind: 'OPENED',
    detail: { seq: opened.seq, redrive: ref.attempt },
  });
}
