/**
 * The recording-system port over the S3 API (any S3-compatible object store), with the AWS
 * SDK's S3 client. A file lands at `<prefix><orderId>/<fileName>` in the target's bucket.
 *
 * - put streams the file from disk in one PUT (a full-object SHA-256 is not available for
 *   multipart uploads) with `x-amz-checksum-sha256`, which the server checks against the bytes
 *   it received (a mismatch is refused, nothing is stored), the idempotency key as user
 *   metadata, and `If-None-Match: *`, so a PUT never replaces a held object. A held object with
 *   this interaction's key and checksum is "already stored"; any other is a conflict.
 * - stat is a HEAD with checksum mode: the SHA-256 the server computed, the size, the key.
 *   An object the server holds no SHA-256 for (another writer's) is read back and hashed.
 * - remove deletes with `If-Match: <ETag>` of the object it looked at; removeIfOwn deletes
 *   only an object that carries the given idempotency key, under the same condition.
 * - list pages through ListObjectsV2 and reads each object's receipt (HEAD).
 * The SDK's own retries are off: Temporal retries, by the failure types the errors map to.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { S3Target } from '../config/target-kinds';
import { errorText } from '../errors';
import { requestDeadline } from './deadline';
import { checkFileNames, checkLimit, openSource } from './http-requests';
import {
  DEFAULT_LIST_LIMIT,
  RecordingSystemError,
  type ListPage,
  type PutRequest,
  type PutResult,
  type Receipt,
  type RecordingSystem,
  type RecordingSystemErrorKind,
  type RequestOptions,
} from './port';

/** The user metadata key (x-amz-meta-idempotency-key) that carries the interaction's id. */
export const S3_KEY_METADATA = 'idempotency-key';
/** HEADs in flight while a list page reads its receipts. */
const LIST_HEADS_IN_FLIGHT = 8;

type S3Settings = Pick<
  S3Target,
  'endpoint' | 'region' | 'bucket' | 'prefix' | 'forcePathStyle' | 'accessKeyId' | 'secretAccessKey' | 'ca'
> & { requestTimeoutMs: number };

interface Held {
  receipt: Receipt;
  etag: string | undefined;
}

export class S3RecordingSystem implements RecordingSystem {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly secrets: string[];

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.prefix = settings.prefix;
    this.timeoutMs = settings.requestTimeoutMs;
    this.secrets = [settings.secretAccessKey, settings.accessKeyId];
    this.client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      maxAttempts: 1,
      // Failures reach the caller as errors; the SDK's own warnings about them add nothing.
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      // The checksum this adapter sends is the one that counts; no CRC trailer besides.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: Math.min(settings.requestTimeoutMs, 10_000),
        requestTimeout: settings.requestTimeoutMs,
        ...(settings.ca
          ? { httpsAgent: new HttpsAgent({ keepAlive: true, ca: [...rootCertificates, settings.ca] }) }
          : {}),
      },
    });
  }

  async put(req: PutRequest): Promise<PutResult> {
    const key = this.keyOf(req.orderId, req.fileName);
    const source = await openSource(req.sourcePath, req.size);
    try {
      await this.call('PUT', key, req.signal, (abortSignal) =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: req.pace ? req.pace(source) : source,
            ContentLength: req.size,
            ContentType: req.contentType,
            ChecksumSHA256: Buffer.from(req.sha256, 'hex').toString('base64'),
            IfNoneMatch: '*',
            Metadata: { [S3_KEY_METADATA]: req.idempotencyKey },
          }),
          { abortSignal },
        ),
      );
      return { outcome: 'stored', httpStatus: 201 };
    } catch (err) {
      if (!(err instanceof RecordingSystemError && err.httpStatus === 412)) throw err;
      const held = await this.head(req.orderId, req.fileName, req.signal);
      if (!held) throw this.error('unavailable', `PUT ${key}: held when written, gone when read; try again`, 412);
      const r = held.receipt;
      if (r.idempotencyKey === req.idempotencyKey && r.sha256 === req.sha256 && r.size === req.size) {
        return { outcome: 'already-stored', httpStatus: 200 };
      }
      throw this.error(
        'conflict',
        `PUT ${key}: the bucket holds this key with other content (sha256 ${r.sha256})`,
        409,
      );
    } finally {
      source.destroy();
    }
  }

  async stat(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<Receipt | null> {
    return (await this.head(orderId, fileName, opts.signal))?.receipt ?? null;
  }

  async remove(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<'removed' | 'absent'> {
    const held = await this.head(orderId, fileName, opts.signal);
    if (!held) return 'absent';
    await this.deleteIfUnchanged(orderId, fileName, held, opts.signal);
    return 'removed';
  }

  /**
   * Removes the object only when it carries `idempotencyKey`, and only the very object that was
   * looked at (`If-Match` on its ETag): a copy written meanwhile by anyone else stays.
   */
  async removeIfOwn(
    orderId: string,
    fileName: string,
    idempotencyKey: string,
    opts: RequestOptions = {},
  ): Promise<'removed' | 'absent' | 'other'> {
    const held = await this.head(orderId, fileName, opts.signal);
    if (!held) return 'absent';
    if (held.receipt.idempotencyKey !== idempotencyKey) return 'other';
    await this.deleteIfUnchanged(orderId, fileName, held, opts.signal);
    return 'removed';
  }

  async list(opts: { cursor?: string | null; limit?: number } & RequestOptions = {}): Promise<ListPage> {
    const limit = opts.limit === undefined ? DEFAULT_LIST_LIMIT : checkLimit(opts.limit);
    const page = await this.call('LIST', this.prefix || '/', opts.signal, (abortSignal) =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix || undefined,
          MaxKeys: limit,
          ...(opts.cursor ? { ContinuationToken: opts.cursor } : {}),
        }),
        { abortSignal },
      ),
    );
    const names = (page.Contents ?? []).flatMap((o) => {
      const parsed = o.Key ? this.namesOf(o.Key) : null;
      return parsed ? [parsed] : [];
    });
    const files: Receipt[] = [];
    for (let i = 0; i < names.length; i += LIST_HEADS_IN_FLIGHT) {
      const held = await Promise.all(
        names.slice(i, i + LIST_HEADS_IN_FLIGHT).map(([o, f]) => this.head(o, f, opts.signal)),
      );
      // An object removed between the listing and its HEAD is no longer held.
      for (const h of held) if (h) files.push(h.receipt);
    }
    return { files, nextCursor: page.IsTruncated && page.NextContinuationToken ? page.NextContinuationToken : null };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private keyOf(orderId: string, fileName: string): string {
    checkFileNames(orderId, fileName);
    return `${this.prefix}${orderId}/${fileName}`;
  }

  /** The order id and file name of a key under the prefix; null for keys of another shape. */
  private namesOf(key: string): [string, string] | null {
    if (!key.startsWith(this.prefix)) return null;
    const parts = key.slice(this.prefix.length).split('/');
    return parts.length === 2 && parts[0] && parts[1] ? [parts[0], parts[1]] : null;
  }

  private async head(orderId: string, fileName: string, signal?: AbortSignal): Promise<Held | null> {
    const key = this.keyOf(orderId, fileName);
    let out: HeadObjectCommandOutput;
    try {
      out = await this.call('HEAD', key, signal, (abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }), {
          abortSignal,
        }),
      );
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 404) return null;
      throw err;
    }
    const checksum = out.ChecksumSHA256 && !out.ChecksumSHA256.includes('-') ? out.ChecksumSHA256 : undefined;
    const sha256 = checksum
      ? Buffer.from(checksum, 'base64').toString('hex')
      : await this.readBackSha256(key, out.ETag, signal);
    return {
      etag: out.ETag,
      receipt: {
        orderId,
        fileName,
        sha256,
        size: out.ContentLength ?? 0,
        idempotencyKey: out.Metadata?.[S3_KEY_METADATA] ?? '',
        receivedAt: (out.LastModified ?? new Date(0)).toISOString(),
      },
    };
  }

  /** Hashes an object the server keeps no SHA-256 for (written without one, or in parts). */
  private async readBackSha256(key: string, etag: string | undefined, signal?: AbortSignal): Promise<string> {
    return this.call('GET', key, signal, async (abortSignal) => {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(etag ? { IfMatch: etag } : {}) }),
        { abortSignal },
      );
      const hash = createHash('sha256');
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
      return hash.digest('hex');
    });
  }

  private async deleteIfUnchanged(orderId: string, fileName: string, held: Held, signal?: AbortSignal) {
    const key = this.keyOf(orderId, fileName);
    try {
      await this.call('DELETE', key, signal, (abortSignal) =>
        this.client.send(
          new DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...(held.etag ? { IfMatch: held.etag } : {}) }),
          { abortSignal },
        ),
      );
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 412) {
        throw this.error(
          'unavailable',
          `DELETE ${key}: the object changed while it was being removed; look again`,
          412,
        );
      }
      throw err;
    }
  }

  /** Runs one S3 request under the request timeout and the caller's signal; maps its errors. */
  private async call<T>(
    op: string,
    key: string,
    signal: AbortSignal | undefined,
    run: (abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = requestDeadline(this.timeoutMs, signal);
    try {
      return await run(deadline.signal);
    } catch (err) {
      if (signal?.aborted) throw err instanceof RecordingSystemError ? signal.reason : err;
      if (err instanceof RecordingSystemError) throw err;
      throw this.mapError(op, key, err, deadline.timedOut);
    } finally {
      deadline.end();
    }
  }

  private mapError(op: string, key: string, err: unknown, timedOut: boolean): RecordingSystemError {
    const where = `${op} s3://${this.bucket}/${key}`;
    const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    if (timedOut || e.name === 'TimeoutError' || e.name === 'AbortError') {
      return this.error('timeout', `${where}: no answer within ${this.timeoutMs} ms`, undefined, err);
    }
    if (status === undefined || status === 0) {
      return this.error('network', `${where}: network error: ${e.code ?? errorText(err)}`, undefined, err);
    }
    const text = `${status} ${e.name ?? ''}: ${errorText(err)} (${where})`;
    return this.error(s3Kind(status, e.name), text, status, err);
  }

  /** An error whose message never quotes the credentials. */
  private error(kind: RecordingSystemErrorKind, message: string, status?: number, cause?: unknown) {
    let safe = message;
    for (const secret of this.secrets) safe = safe.split(secret).join('[redacted]');
    return new RecordingSystemError(kind, safe, status, cause === undefined ? undefined : { cause });
  }
}

/** The port's error kind for an S3 error answer. */
function s3Kind(status: number, code: string | undefined): RecordingSystemErrorKind {
  // The bytes did not arrive as sent: sending them again may succeed.
  if (code === 'BadDigest' || code === 'XAmzContentSHA256Mismatch' || code === 'IncompleteBody') return 'network';
  if (status === 401 || status === 403) return 'unauthorized';
  // 409 from S3 is a conditional write racing another: try again.
  if (status >= 500 || status === 429 || status === 408 || status === 409) return 'unavailable';
  if (status === 412 || status === 404) return 'protocol';
  return 'protocol';
}
