/**
 * The recording-system port: what image-sync needs from the system that owns an order's files.
 *
 * Each kind of target has its adapter, made by factory.ts: HTTP (http-adapter.ts, image-sync's
 * own contract, which the simulator serves), S3 (s3-adapter.ts) and SFTP (sftp-adapter.ts).
 */

import type { Readable } from 'node:stream';

/** What the recording system says it holds for one file. */
export interface Receipt {
  orderId: string;
  fileName: string;
  sha256: string;
  size: number;
  idempotencyKey: string;
  receivedAt: string;
}

export interface PutRequest {
  orderId: string;
  fileName: string;
  /** Path of the file to stream; its bytes are never held whole in memory. */
  sourcePath: string;
  /** sha256 (hex) of the file, sent as X-Checksum-SHA256. */
  sha256: string;
  /** Size in bytes, sent as Content-Length. */
  size: number;
  contentType: string;
  /** The interaction sequence number. */
  idempotencyKey: string;
  /**
   * Replace the copy held under this idempotency key (the same bytes, recorded by an earlier
   * interaction) by this upload, in one step at the recording system. A 'conflict' error
   * (412) when the file is absent or its copy carries another key: nothing is stored.
   */
  replacing?: string;
  signal?: AbortSignal;
  /** Paces the file's stream on its way out (the batch's byte limits); the stream as read when absent. */
  pace?: (source: Readable) => Readable;
}

export interface PutResult {
  /** 201 stored (or replaced), or 200: the same checksum was already stored. */
  outcome: 'stored' | 'already-stored';
  httpStatus: number;
}

export interface ListPage {
  files: Receipt[];
  nextCursor: string | null;
}

/** Receipts per list page when the request names no limit. */
export const DEFAULT_LIST_LIMIT = 100;
/** The most receipts one list page holds; a larger limit is read as this one. */
export const MAX_LIST_LIMIT = 1000;

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface RecordingSystem {
  /**
   * Whether put honours `replacing` (the HTTP contract's conditional PUT). Adapters without it
   * keep the copy held, and `--resend-recorded` then accepts that copy as delivered.
   */
  readonly replacesHeldCopy?: boolean;
  put(req: PutRequest): Promise<PutResult>;
  /** The receipt of one file, or null when the recording system does not hold it. */
  stat(orderId: string, fileName: string, opts?: RequestOptions): Promise<Receipt | null>;
  /** Removes one file. Both "removed" and "absent" mean the file is gone. */
  remove(orderId: string, fileName: string, opts?: RequestOptions): Promise<'removed' | 'absent'>;
  /**
   * Removes one file only when the copy held is the one written under `idempotencyKey`, in one
   * step at the recording system (no write between a look and the removal can be lost).
   * 'other': the copy held carries another key, and nothing was removed.
   */
  removeIfOwn(
    orderId: string,
    fileName: string,
    idempotencyKey: string,
    opts?: RequestOptions,
  ): Promise<'removed' | 'absent' | 'other'>;
  list(opts?: { cursor?: string | null; limit?: number } & RequestOptions): Promise<ListPage>;
  /** Releases what the adapter keeps open (connections); absent when it keeps nothing. */
  close?(): Promise<void>;
}

export type RecordingSystemErrorKind =
  /** 409: the file is stored with another checksum. */
  | 'conflict'
  /** 422: rejected by a business rule. */
  | 'rejected'
  /** 401 / 403: bad or missing token. */
  | 'unauthorized'
  /** 5xx. */
  | 'unavailable'
  /** No answer in time. */
  | 'timeout'
  /** Connection refused, reset, DNS. */
  | 'network'
  /** Any other answer the contract does not name. */
  | 'protocol';

const RETRYABLE: Record<RecordingSystemErrorKind, boolean> = {
  conflict: false,
  rejected: false,
  unauthorized: false,
  unavailable: true,
  timeout: true,
  network: true,
  protocol: false,
};

export class RecordingSystemError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly kind: RecordingSystemErrorKind,
    message: string,
    readonly httpStatus?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RecordingSystemError';
    this.retryable = RETRYABLE[kind];
  }
}

export function isRetryableKind(kind: RecordingSystemErrorKind): boolean {
  return RETRYABLE[kind];
}
