/**
 * The seam between the intake server (HTTP: authentication, path confinement, request schemas,
 * status codes) and the intake's workflow side (Update-with-Start into the intake workflow, the
 * submissions the ledger keeps, each file's state). The HTTP layer only ever speaks to an
 * IntakeBackend, so each side is built and tested on its own terms.
 *
 * Everything that reaches the backend is already validated: the order id and file names follow
 * the manifest's rules, every source path is absolute and confined to the configured source
 * roots (symlinks resolved), and the body is within the documented size.
 */
import type { FileState } from '../shared';

/** One file of a submission, by reference: the workers read it from `sourcePath`. */
export interface IntakeFile {
  fileName: string;
  /** Absolute, resolved path, inside one of the intake's source roots. */
  sourcePath: string;
  /** Expected sha256 (hex), when the platform knows it. */
  sha256?: string;
  /** Expected size in bytes, when the platform knows it. */
  size?: number;
  /** Recording-system target; the default target when absent. */
  target?: string;
  contentType?: string;
}

export interface IntakeSubmission {
  orderId: string;
  /** The caller's `Idempotency-Key`: a retried submission with the same key delivers nothing new. */
  idempotencyKey: string;
  /** sha256 (hex) of the canonical body: the same key with another body is refused. */
  bodySha256: string;
  files: IntakeFile[];
}

export type SubmitOutcome =
  /** Durable in Temporal (202): `replayed` when this key had already been taken with this body. */
  | { kind: 'accepted'; submissionId: string; replayed: boolean }
  /** The same key is still being taken by another request (409). */
  | { kind: 'in_progress' }
  /** The key was taken before with a different body (422). */
  | { kind: 'key_reused' }
  /** Saturated: too many files waiting (429 with Retry-After). */
  | { kind: 'saturated'; retryAfterSeconds: number; reason: string }
  /** Temporal (or the ledger) cannot be reached now (503). */
  | { kind: 'unavailable'; reason: string };

export interface IntakeFileStatus {
  fileName: string;
  target: string;
  state: FileState | 'ACCEPTED';
  /** The interaction that delivered (or is delivering) the file, when one has begun. */
  interactionId: string | null;
  resends: number;
  reason?: string;
  updatedAt: string;
}

export interface IntakeOrderStatus {
  orderId: string;
  files: IntakeFileStatus[];
}

export interface IntakeBackend {
  submit(submission: IntakeSubmission): Promise<SubmitOutcome>;
  /** Each file of the order submitted through the intake; undefined when none was. */
  orderStatus(orderId: string): Promise<IntakeOrderStatus | undefined>;
  /** Whether Temporal and the ledger answer (the server's readiness). */
  ready(): Promise<{ ok: boolean; reason?: string }>;
  close(): Promise<void>;
}
