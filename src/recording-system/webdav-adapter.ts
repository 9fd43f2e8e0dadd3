/**
 * The recording-system port over WebDAV (RFC 4918), with fetch. A file lands at
 * `<url>/<orderId>/<fileName>`.
 *
 * - put streams the file to a temporary name under `<url>/.image-sync-tmp/`, sets the
 *   idempotency key and the sha256 as dead properties (PROPPATCH), then moves it into place with
 *   `MOVE` and `Overwrite: F`, so a held file is never replaced and the file never shows without
 *   its properties. A held file is "already stored" when it carries this key and checksum.
 * - stat reads the properties (PROPFIND) and reads the file back, hashing it: WebDAV has no
 *   server-side checksum.
 * - remove and removeIfOwn delete with `If-Match: <ETag>` of the file that was looked at.
 * - list pages through the order collections (PROPFIND, Depth 1), in name order.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as agentFetch } from 'undici';
import { requestDeadline } from './deadline';
import { kindForStatus, networkCause, readExcerpt } from './http-answers';
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
import { parseMultistatus, PROPFIND_BODY, proppatchBody, type DavEntry } from './webdav-xml';

/** The collection under the root that holds temporary names. */
export const DAV_TMP = '.image-sync-tmp';

export interface WebDavSettings {
  /** The root collection. */
  url: string;
  auth: { username: string; password: string } | { token: string };
  ca?: string;
  requestTimeoutMs: number;
}

interface Call {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Readable;
  signal?: AbortSignal;
}

export class WebDavRecordingSystem implements RecordingSystem {
  private readonly base: string;
  private readonly authorization: string;
  private readonly secrets: string[];
  private readonly agent?: Agent;
  private readonly collections = new Set<string>();

  constructor(private readonly settings: WebDavSettings) {
    this.base = settings.url.replace(/\/+$/, '');
    if ('token' in settings.auth) {
      this.authorization = `Bearer ${settings.auth.token}`;
      this.secrets = [settings.auth.token];
    } else {
      const basic = Buffer.from(`${settings.auth.username}:${settings.auth.password}`).toString('base64');
      this.authorization = `Basic ${basic}`;
      this.secrets = [settings.auth.password, basic];
    }
    if (settings.ca) this.agent = new Agent({ connect: { ca: [...rootCertificates, settings.ca] } });
  }

  async put(req: PutRequest): Promise<PutResult> {
    const final = this.fileUrl(req.orderId, req.fileName);
    await this.ensureCollection(`${this.base}/${DAV_TMP}/`, req.signal);
    await this.ensureCollection(`${this.base}/${encodeURIComponent(req.orderId)}/`, req.signal);
    const temp = `${this.base}/${DAV_TMP}/${randomBytes(8).toString('hex')}.part`;
    let moved = false;
    const source = await openSource(req.sourcePath, req.size);
    try {
      const body = req.pace ? req.pace(source) : source;
      const headers = { 'Content-Type': req.contentType, 'Content-Length': String(req.size), 'If-None-Match': '*' };
      await this.expect([201, 204], { method: 'PUT', url: temp, headers, body, signal: req.signal });
      const patch = proppatchBody({ 'idempotency-key': req.idempotencyKey, sha256: req.sha256 });
      const patched = await this.call(
        {
          method: 'PROPPATCH',
          url: temp,
          headers: { 'Content-Type': 'application/xml' },
          body: patch,
          signal: req.signal,
        },
        async (res) => ({ status: res.status, text: await res.text() }),
      );
      // 207 with a status per property (each must be 200), or a plain success (lighttpd: 204).
      const stored =
        patched.status === 207
          ? !/<(?:[\w.-]+:)?status>[^<]*\s(?!200)\d{3}\s/.test(patched.text)
          : patched.status === 200 || patched.status === 204;
      if (!stored) {
        throw this.error('protocol', `PROPPATCH ${temp} did not store the properties (${patched.status})`);
      }
      const moveStatus = await this.call(
        { method: 'MOVE', url: temp, headers: { Destination: final, Overwrite: 'F' }, signal: req.signal },
        async (res) => {
          if (res.status !== 201 && res.status !== 204 && res.status !== 412) {
            throw await this.statusError('MOVE', final, res);
          }
          await res.arrayBuffer();
          return res.status;
        },
      );
      if (moveStatus !== 412) {
        moved = true;
        return { outcome: 'stored', httpStatus: 201 };
      }
      const held = await this.stat(req.orderId, req.fileName, { signal: req.signal });
      if (!held) throw this.error('unavailable', `MOVE ${final}: held when moved, gone when read; try again`, 412);
      if (held.idempotencyKey === req.idempotencyKey && held.sha256 === req.sha256) {
        return { outcome: 'already-stored', httpStatus: 200 };
      }
      throw this.error('conflict', `MOVE ${final}: the server holds this file with other content`, 409);
    } finally {
      source.destroy();
      if (!moved) await this.call({ method: 'DELETE', url: temp }, (r) => r.arrayBuffer()).catch(() => undefined);
    }
  }

  async stat(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<Receipt | null> {
    const entry = await this.propfind(this.fileUrl(orderId, fileName), opts.signal);
    if (!entry) return null;
    const url = this.fileUrl(orderId, fileName);
    // The body is read within the request's deadline: a server that stalls mid-body times out.
    const content = await this.call({ method: 'GET', url, signal: opts.signal }, async (res) => {
      if (res.status === 404) {
        await res.arrayBuffer();
        return null;
      }
      if (res.status !== 200 || !res.body) throw await this.statusError('GET', url, res);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.byteLength;
      }
      return { sha256: hash.digest('hex'), size };
    });
    if (!content) return null;
    return {
      orderId,
      fileName,
      ...content,
      idempotencyKey: entry.idempotencyKey ?? '',
      receivedAt: entry.lastModified ? new Date(entry.lastModified).toISOString() : new Date(0).toISOString(),
    };
  }

  async remove(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<'removed' | 'absent'> {
    const url = this.fileUrl(orderId, fileName);
    const entry = await this.propfind(url, opts.signal);
    if (!entry) return 'absent';
    return (await this.deleteIfUnchanged(url, entry, opts.signal)) ? 'removed' : 'absent';
  }

  /** Removes the file only when it carries `idempotencyKey`, and only the very file looked at. */
  async removeIfOwn(
    orderId: string,
    fileName: string,
    idempotencyKey: string,
    opts: RequestOptions = {},
  ): Promise<'removed' | 'absent' | 'other'> {
    const url = this.fileUrl(orderId, fileName);
    const entry = await this.propfind(url, opts.signal);
    if (!entry) return 'absent';
    if (entry.idempotencyKey !== idempotencyKey) return 'other';
    return (await this.deleteIfUnchanged(url, entry, opts.signal)) ? 'removed' : 'absent';
  }

  /** Order collections and their files in name order; the cursor is the last `orderId/fileName`. */
  async list(opts: { cursor?: string | null; limit?: number } & RequestOptions = {}): Promise<ListPage> {
    const limit = opts.limit === undefined ? DEFAULT_LIST_LIMIT : checkLimit(opts.limit);
    const after = opts.cursor ?? '';
    const names: [string, string][] = [];
    const orders = (await this.children(`${this.base}/`, opts.signal))
      .filter((e) => e.collection && e.name !== DAV_TMP)
      .map((e) => e.name)
      .sort();
    for (const orderId of orders) {
      if (names.length > limit) break;
      if (after && orderId < after.split('/')[0]!) continue;
      const files = (await this.children(`${this.base}/${encodeURIComponent(orderId)}/`, opts.signal))
        .filter((e) => !e.collection)
        .map((e) => e.name)
        .sort();
      for (const fileName of files) {
        if (!after || `${orderId}/${fileName}` > after) names.push([orderId, fileName]);
        if (names.length > limit) break;
      }
    }
    const page = names.slice(0, limit);
    const files: Receipt[] = [];
    for (const [orderId, fileName] of page) {
      const receipt = await this.stat(orderId, fileName, opts);
      if (receipt) files.push(receipt);
    }
    const last = page[page.length - 1];
    return { files, nextCursor: names.length > limit && last ? `${last[0]}/${last[1]}` : null };
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }

  private fileUrl(orderId: string, fileName: string): string {
    checkFileNames(orderId, fileName);
    if (orderId === DAV_TMP) throw this.error('protocol', `orderId ${DAV_TMP} is reserved on WebDAV targets`);
    return `${this.base}/${encodeURIComponent(orderId)}/${encodeURIComponent(fileName)}`;
  }

  private async ensureCollection(url: string, signal?: AbortSignal): Promise<void> {
    if (this.collections.has(url)) return;
    await this.call({ method: 'MKCOL', url, signal }, async (res) => {
      // 405: the collection exists already.
      if (res.status !== 201 && res.status !== 405) throw await this.statusError('MKCOL', url, res);
      await res.arrayBuffer();
    });
    this.collections.add(url);
  }

  private async propfind(url: string, signal?: AbortSignal): Promise<DavEntry | null> {
    const entries = await this.propfindDepth(url, '0', signal);
    return entries?.[0] ?? null;
  }

  private async children(url: string, signal?: AbortSignal): Promise<(DavEntry & { name: string })[]> {
    const own = new URL(url).pathname.replace(/\/+$/, '');
    const entries = (await this.propfindDepth(url, '1', signal)) ?? [];
    return entries.flatMap((e) => {
      const path = new URL(e.href, url).pathname.replace(/\/+$/, '');
      if (path === own) return [];
      return [{ ...e, name: decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) }];
    });
  }

  private async propfindDepth(url: string, depth: '0' | '1', signal?: AbortSignal): Promise<DavEntry[] | null> {
    return this.call(
      {
        method: 'PROPFIND',
        url,
        headers: { Depth: depth, 'Content-Type': 'application/xml' },
        body: PROPFIND_BODY,
        signal,
      },
      async (res) => {
        if (res.status === 404) {
          await res.arrayBuffer();
          return null;
        }
        if (res.status !== 207) throw await this.statusError('PROPFIND', url, res);
        return parseMultistatus(await res.text());
      },
    );
  }

  /** DELETE under `If-Match` of the file's ETag; false when it was gone already. */
  private async deleteIfUnchanged(url: string, entry: DavEntry, signal?: AbortSignal): Promise<boolean> {
    const headers: Record<string, string> = entry.etag ? { 'If-Match': entry.etag } : {};
    const status = await this.call({ method: 'DELETE', url, headers, signal }, async (res) => {
      if (![200, 204, 404, 412].includes(res.status)) throw await this.statusError('DELETE', url, res);
      await res.arrayBuffer();
      return res.status;
    });
    if (status === 412) {
      throw this.error('unavailable', `DELETE ${url}: the file changed while it was being removed; look again`, 412);
    }
    return status !== 404;
  }

  private async expect(statuses: number[], call: Call): Promise<void> {
    await this.call(call, async (res) => {
      if (!statuses.includes(res.status)) throw await this.statusError(call.method, call.url, res);
      await res.arrayBuffer();
    });
  }

  /**
   * One request, its answer read by `read`, both under one deadline (the request timeout) and the
   * caller's signal; transport failures, and a timeout while the body is read, mapped.
   */
  private async call<T>(call: Call, read: (res: Response) => Promise<T>): Promise<T> {
    const deadline = requestDeadline(this.settings.requestTimeoutMs, call.signal);
    const { signal } = deadline;
    const body = call.body instanceof Readable ? (Readable.toWeb(call.body) as ReadableStream) : call.body;
    const init = {
      method: call.method,
      headers: { ...call.headers, Authorization: this.authorization },
      body,
      duplex: body instanceof ReadableStream ? 'half' : undefined,
      redirect: 'error',
      signal,
      ...(this.agent ? { dispatcher: this.agent } : {}),
    };
    const failed = (err: unknown): unknown => {
      if (call.signal?.aborted || err instanceof RecordingSystemError) return err;
      const where = `${call.method} ${call.url}`;
      if (deadline.timedOut)
        return this.error('timeout', `${where}: no answer within ${this.settings.requestTimeoutMs} ms`);
      return this.error('network', `${where}: network error: ${networkCause(err)}`);
    };
    try {
      let res: Response;
      try {
        res = await (this.agent ? agentFetch(call.url, init as never) : fetch(call.url, init as RequestInit));
      } catch (err) {
        throw failed(err);
      }
      try {
        return await read(res);
      } catch (err) {
        throw failed(err);
      }
    } finally {
      deadline.end();
    }
  }

  private async statusError(method: string, url: string, res: Response): Promise<RecordingSystemError> {
    const excerpt = await readExcerpt(res);
    return this.error(
      kindForStatus(res.status),
      `${res.status} ${method} ${url}${excerpt ? `: ${excerpt}` : ''}`,
      res.status,
    );
  }

  /** An error whose message never quotes a credential. */
  private error(kind: RecordingSystemErrorKind, message: string, status?: number): RecordingSystemError {
    let safe = message;
    for (const secret of this.secrets) safe = safe.split(secret).join('[redacted]');
    return new RecordingSystemError(kind, safe, status);
  }
}
