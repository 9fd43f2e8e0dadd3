/**
 * The failure types the activities raise and the workflows act on: one list, shared by both.
 *
 * An activity throws an `ApplicationFailure` whose `type` is one of these names; the retry
 * policies (src/workflows/options.ts) and the file workflow's resend decisions read the same
 * groups. This module must stay free of Node imports: the workflow bundle includes it.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { errorText } from './errors';

export const FailureType = {
  /** 422 from the recording system: a business rule refused the file. */
  Rejected: 'Rejected',
  /** 409: the recording system holds the file with other bytes, written by another sender. */
  Conflict: 'Conflict',
  /** 401/403: the token was refused. */
  Unauthorized: 'Unauthorized',
  /** 5xx from the recording system. */
  Unavailable: 'Unavailable',
  /** No answer from the recording system in time. */
  Timeout: 'Timeout',
  /** No connection to the recording system. */
  Network: 'Network',
  /** An answer outside the contract, or a request HTTP cannot carry. */
  Protocol: 'Protocol',
  /** The source file is not there. */
  SourceMissing: 'SourceMissing',
  /** The source file's sha256 differs from the manifest's. */
  SourceChecksumMismatch: 'SourceChecksumMismatch',
  /** The item names a target the targets configuration does not have. */
  UnknownTarget: 'UnknownTarget',
  /** Input no retry can fix (a manifest item that is not there, a malformed argument). */
  BadInput: 'BadInput',
  /** A DELETE was answered but the file is still held. */
  RemoveNotEffective: 'RemoveNotEffective',
  /** An operator action that cannot apply to the batch as it is (an update's validator said no). */
  Refused: 'Refused',
  /** The ledger's database cannot be reached or written (down, restarting, disk full, locked). */
  LedgerUnavailable: 'LedgerUnavailable',
  /** Another live interaction holds the file's claim: a removal of this interaction's copy waits for it. */
  ClaimBusy: 'ClaimBusy',
  /** A notification receiver did not take the event (no answer, or a status other than 2xx). */
  NotifyFailed: 'NotifyFailed',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** What no resend of the same file can fix: the file is rolled back at once. */
export const NOT_RESENDABLE: readonly FailureType[] = [
  FailureType.Rejected,
  FailureType.Conflict,
  FailureType.Unauthorized,
  FailureType.SourceMissing,
  FailureType.SourceChecksumMismatch,
  FailureType.UnknownTarget,
  FailureType.BadInput,
];

/** The recording system did not answer usefully: these count towards the outage auto-pause. */
export const TRANSPORT: readonly FailureType[] = [FailureType.Unavailable, FailureType.Timeout, FailureType.Network];

/** Failure types an activity's own retry policy never retries: no attempt changes them. */
export const NOT_RETRYABLE: readonly FailureType[] = NOT_RESENDABLE;

/** The innermost failure of an activity failure chain. */
export function rootCause(err: unknown): unknown {
  let current = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current;
}

/** The failure type of an activity failure, when it carries one. */
export function failureType(err: unknown): string | undefined {
  const cause = rootCause(err);
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

/** Whether sending the file again may succeed where this attempt failed. */
export function isResendable(err: unknown): boolean {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure) {
    return !cause.nonRetryable && !NOT_RESENDABLE.includes(cause.type as FailureType);
  }
  return true;
}

export function isTransportFault(err: unknown): boolean {
  return TRANSPORT.includes(failureType(err) as FailureType);
}

export function isLedgerUnavailable(err: unknown): boolean {
  return failureType(err) === FailureType.LedgerUnavailable;
}

/** Set in a failure's details by a transfer that failed while reading the receipt, after its send. */
export const VERIFY_PHASE = 'verify';

/** Whether the failure came from reading the receipt (the send itself went through). */
export function failedVerifying(err: unknown): boolean {
  const cause = rootCause(err);
  if (!(cause instanceof ApplicationFailure)) return false;
  const first: unknown = cause.details?.[0];
  return typeof first === 'object' && first !== null && (first as { phase?: unknown }).phase === VERIFY_PHASE;
}

/** A one-line reason for a person: `Type: message`. */
export function failureMessage(err: unknown): string {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type) return `${cause.type}: ${cause.message}`;
  return errorText(cause);
}
