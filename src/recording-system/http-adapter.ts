/**
 * The production recording-system client: speaks the HTTP contract of
 * docs/recording-system-contract.md with Node's global fetch.
 *
 * - PUT streams the source file from disk; the file is never held whole in memory.
 * - Every request is bounded by `requestTimeoutMs` (sending the body and reading the answer
 *   included) and also follows the caller's AbortSignal. A caller abort is rethrown as is, so
 *   cancellation stays visible; a timeout becomes a RecordingSystemError of kind 'timeout'.
 * - Answers the contract does not name, redirects included, become RecordingSystemError of
 *   kind 'protocol'.
 * - Error messages carry the method, the path, the HTTP status and a short excerpt of the
 *   answer's body, and never the token.
 */
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as agentFetch } from 'undici';
import type { z } from 'zod';
import {
  excerptOf,
  isRedirectRefusal,
  kindForStatus,
  listPageSchema,
  networkCause,
  readExcerpt,
  reasonOf,
  receiptSchema,
} from './http-answers';
import { requestDeadline } from './deadline';
import { checkBaseUrl, checkHeaders, checkLimit, filePath, openSource } from './http-requests';
import {
  RecordingSystemError,
  type ListPage,
  type PutRequest,
  type PutResult,
  type Receipt,
  type RecordingSystem,
  type RecordingSystemErrorKind,
  type RequestOptions,
} from './port';

export interface HttpRecordingSystemOptions {
  /** Where the recording system answers, e.g. `http://127.0.0.1:8700`; a path prefix is kept. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string;
  /** Upper bound for one whole request, body upload and answer included. */
  requestTimeoutMs?: number;
  /** Replaces the global fetch (tests, instrumentation). */
  fetchImpl?: typeof fetch;
  /**
   * TLS material (PEM): CA certificates trusted for the server, in addition to Node's own, and
   * the client certificate and key for mutual TLS.
   */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** An answer a request's interpreter does not handle; it becomes a classified error. */
const UNHANDLED = Symbol('unhandled answer');
type Interpreter<T> = (res: Response) => Promise<T | typeof UNHANDLED>;

interface Exchange {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: ReadableStream<Uint8Array>;
  signal?: AbortSignal;
}

export class HttpRecordingSystem implements RecordingSystem {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly requestTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly agent?: Agent;

  constructor({ baseUrl, token, requestTimeoutMs = 30_000, fetchImpl, tls }: HttpRecordingSystemOptions) {
    this.baseUrl = checkBaseUrl(baseUrl);
    if (token === '') throw new Error('recording system token must not be empty');
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new Error(`requestTimeoutMs must be a positive number, got ${requestTimeoutMs}`);
    }
    this.token = token;
    this.requestTimeoutMs = requestTimeoutMs;
    if (tls && !fetchImpl) {
      if (!this.baseUrl.startsWith('https:')) throw new Error('TLS options need an https:// recording system URL');
      const agent = new Agent({ connect: { ...tls, ...(tls.ca ? { ca: withSystemRoots(tls.ca) } : {}) } });
      this.agent = agent;
      // undici's fetch is the global fetch's implementation, with a dispatcher that holds the TLS options.
      this.fetchImpl = ((input: string, init: RequestInit) =>
        agentFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
    } else {
      this.fetchImpl = fetchImpl ?? ((input, init) => fetch(input, init));
    }
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }

  /** A PUT with If-Match replaces the copy held under that key. */
  readonly replacesHeldCopy = true;

  async put(req: PutRequest): Promise<PutResult> {
    const path = filePath(req.orderId, req.fileName);
    const headers = checkHeaders({
      'Content-Type': req.contentType,
      'Content-Length': String(req.size),
      'X-Checksum-SHA256': req.sha256,
      'Idempotency-Key': req.idempotencyKey,
      ...(req.replacing !== undefined ? { 'If-Match': req.replacing } : {}),
    });
    const source = await openSource(req.sourcePath, req.size);
    try {
      return await this.exchange(
        {
          method: 'PUT',
          path,
          headers,
          body: Readable.toWeb(req.pace ? req.pace(source) : source) as ReadableStream<Uint8Array>,
          signal: req.signal,
        },
        async (res) => {
          if (res.status === 412 && req.replacing !== undefined) {
            await res.arrayBuffer();
            throw this.error('conflict', `PUT ${path}: the copy held is not ${req.replacing}'s; nothing stored`, 412);
          }
          if (res.status !== 201 && res.status !== 200) return UNHANDLED;
          await res.arrayBuffer();
          return { outcome: res.status === 201 ? 'stored' : 'already-stored', httpStatus: res.status };
        },
      );
    } finally {
      source.destroy();
    }
  }

  async stat(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<Receipt | null> {
    const path = filePath(orderId, fileName);
    return this.exchange({ method: 'GET', path, signal: opts.signal }, async (res) => {
      if (res.status === 404) {
        await res.arrayBuffer();
        return null;
      }
      if (res.status !== 200) return UNHANDLED;
      return this.parseBody(await res.text(), receiptSchema, `GET ${path}`, res.status);
    });
  }

  async remove(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<'removed' | 'absent'> {
    const path = filePath(orderId, fileName);
    return this.exchange({ method: 'DELETE', path, signal: opts.signal }, async (res) => {
      if (res.status !== 204 && res.status !== 404) return UNHANDLED;
      await res.arrayBuffer();
      return res.status === 204 ? 'removed' : 'absent';
    });
  }

  async removeIfOwn(
    orderId: string,
    fileName: string,
    idempotencyKey: string,
    opts: RequestOptions = {},
  ): Promise<'removed' | 'absent' | 'other'> {
    const path = filePath(orderId, fileName);
    const headers = checkHeaders({ 'If-Match': idempotencyKey });
    return this.exchange({ method: 'DELETE', path, headers, signal: opts.signal }, async (res) => {
      if (res.status !== 204 && res.status !== 404 && res.status !== 412) return UNHANDLED;
      await res.arrayBuffer();
      return res.status === 204 ? 'removed' : res.status === 404 ? 'absent' : 'other';
    });
  }

  async list(opts: { cursor?: string | null; limit?: number } & RequestOptions = {}): Promise<ListPage> {
    const query = new URLSearchParams();
    if (opts.cursor != null) query.set('cursor', opts.cursor);
    if (opts.limit !== undefined) query.set('limit', String(checkLimit(opts.limit)));
    const search = query.toString();
    const path = search ? `/files?${search}` : '/files';
    return this.exchange({ method: 'GET', path, signal: opts.signal }, async (res) => {
      if (res.status !== 200) return UNHANDLED;
      return this.parseBody(await res.text(), listPageSchema, 'GET /files', res.status);
    });
  }

  /**
   * Sends one request and hands the answer to `interpret`. Answers it leaves unhandled, and
   * failures to get an answer, become RecordingSystemError; a caller abort is rethrown as is.
   */
  private async exchange<T>(ex: Exchange, interpret: Interpreter<T>): Promise<T> {
    const deadline = requestDeadline(this.requestTimeoutMs, ex.signal);
    try {
      const res = await this.fetchImpl(this.baseUrl + ex.path, {
        method: ex.method,
        headers: { ...ex.headers, Authorization: `Bearer ${this.token}` },
        body: ex.body,
        duplex: ex.body ? 'half' : undefined,
        // No redirects and no window: fetch then sends the request as is. Otherwise it keeps a
        // copy of the request to replay on a redirect, and that copy holds every byte of a
        // streamed upload in memory until the request ends.
        redirect: 'error',
        window: null,
        signal: deadline.signal,
      });
      const result = await interpret(res);
      if (result !== UNHANDLED) return result;
      throw await this.statusError(ex, res);
    } catch (err) {
      // A caller abort wins over anything else that went wrong meanwhile, so cancellation shows.
      if (ex.signal?.aborted) throw err instanceof RecordingSystemError ? ex.signal.reason : err;
      if (err instanceof RecordingSystemError) throw err;
      throw this.transportError(ex, err, deadline.timedOut);
    } finally {
      deadline.end();
    }
  }

  private async statusError(ex: Exchange, res: Response): Promise<RecordingSystemError> {
    const excerpt = await readExcerpt(res);
    const statusText = res.statusText ? ` ${res.statusText}` : '';
    const reason = reasonOf(excerpt);
    const detail = reason ? `: ${reason}` : '';
    const message = `${res.status}${statusText}${detail} (${describe(ex)})`;
    return this.error(kindForStatus(res.status), message, res.status);
  }

  private transportError(ex: Exchange, err: unknown, timedOut: boolean): RecordingSystemError {
    if (timedOut || (err instanceof Error && err.name === 'TimeoutError')) {
      const message = `${describe(ex)}: no answer within ${this.requestTimeoutMs} ms`;
      return this.error('timeout', message, undefined, err);
    }
    if (isRedirectRefusal(err)) {
      return this.error(
        'protocol',
        `${describe(ex)} answered with a redirect, which the contract does not use`,
        undefined,
        err,
      );
    }
    if (isCertificateRefusal(err)) {
      const message = `${describe(ex)}: TLS handshake refused: ${networkCause(err)}`;
      return this.error('unauthorized', message, undefined, err);
    }
    const message = `${describe(ex)}: network error: ${networkCause(err)}`;
    return this.error('network', message, undefined, err);
  }

  /** Parses a JSON answer; a body that is not JSON or not of the expected shape is a protocol error. */
  private parseBody<T>(text: string, schema: z.ZodType<T>, where: string, status: number): T {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw this.error(
        'protocol',
        `${where} answered ${status} with a body that is not JSON: ${excerptOf(text)}`,
        status,
      );
    }
    const parsed = schema.safeParse(data);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : 'body';
    throw this.error(
      'protocol',
      `${where} answered ${status} with an unexpected body (${field}: ${issue?.message})`,
      status,
    );
  }

  /** Builds an error whose message never quotes the token (a server may echo request headers). */
  private error(
    kind: RecordingSystemErrorKind,
    message: string,
    status?: number,
    cause?: unknown,
  ): RecordingSystemError {
    const safe = message.split(this.token).join('[redacted]');
    return new RecordingSystemError(kind, safe, status, cause === undefined ? undefined : { cause });
  }
}

/**
 * A server certificate this client does not trust (unknown CA, wrong name, expired), or a client
 * certificate the server answered with an alert: no retry changes either. (Under TLS 1.3 a
 * server that refuses the client's certificate mostly just closes the connection, which reads as
 * a network error.)
 */
function isCertificateRefusal(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? '';
  return /CERT|UNKNOWN_CA|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
}

/** The given CA certificates and Node's own roots: a private CA is trusted besides, not instead. */
function withSystemRoots(ca: string): string[] {
  return [...rootCertificates, ca];
}

function describe(ex: Exchange): string {
  return `${ex.method} ${ex.path.split('?')[0]}`;
}
