/**
 * Serving requests: the latency, the token check, the route, then the fault draw and the
 * answer of each method, as the module comment of simulator.ts describes.
 */
import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { MAX_LIST_LIMIT, type Receipt } from '../../recording-system/port';
import { FaultDrawer, PUT_FAULT_KINDS, type FaultKind } from './faults';
import {
  faultsOf,
  simulatorFaultsSchema,
  type FaultMethod,
  type ParsedSimulatorOptions,
  type SimulatorFaults,
} from './options';
import {
  decodeCursor,
  encodeCursor,
  headerValue,
  notAllowed,
  openExchange,
  parseLimit,
  problem,
  resolveRoute,
  send,
  splitTarget,
  writeReply,
  type Exchange,
  type Reply,
} from './protocol';
import type { FileStore } from './store';
import { receiveBody, type ReceivedBody } from './upload';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface SimulatorStats {
  /** Requests received, by HTTP method. */
  requests: Record<string, number>;
  /** Answers sent, by HTTP status. */
  responses: Record<string, number>;
  /** Faults injected, by kind. */
  faults: Record<FaultKind, number>;
  /** Files held now. */
  files: number;
  /** Requests held open by a simulated timeout now. */
  held: number;
  /** Upload bodies received whole with their checksum right (answered 201, 200, 409 or 412; fail, timeout and reject faults do not count). */
  uploads: number;
}

/**
 * The uploads of one file: bodies received as `uploads` counts them, copies kept (201, not
 * dropped), and how many senders (distinct idempotency keys) those bodies came from.
 */
export interface FileUploads {
  received: number;
  stored: number;
  senders: number;
}

interface Upload {
  orderId: string;
  fileName: string;
  checksum: string;
  idempotencyKey: string;
  fault: 'drop' | 'corrupt' | null;
  /** If-Match: store only over the copy held under this idempotency key, replacing it. */
  replacing: string | undefined;
}

export class SimulatorHandler {
  /** Fires when the simulator closes: pending latencies and held requests stop waiting. */
  readonly stopping = new AbortController();
  private readonly store: FileStore;
  private readonly token: Buffer;
  private faults: SimulatorFaults;
  private readonly drawer: FaultDrawer;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly counts = {
    requests: {} as Record<string, number>,
    responses: {} as Record<string, number>,
    faults: Object.fromEntries(PUT_FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
  };
  private held = 0;
  private uploads = 0;
  /** Uploads per file (`orderId/fileName`). */
  private readonly uploadsPerFile = new Map<string, { received: number; stored: number; keys: Set<string> }>();

  constructor(options: ParsedSimulatorOptions, store: FileStore) {
    this.store = store;
    this.token = Buffer.from(options.token);
    this.faults = faultsOf(options);
    this.drawer = new FaultDrawer(() => this.faults, options.seed);
  }

  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const work = this.handle(req, res).catch((err: unknown) => this.failInternally(res, err));
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Resolves once every request being served has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stats(): SimulatorStats {
    return {
      requests: { ...this.counts.requests },
      responses: { ...this.counts.responses },
      faults: { ...this.counts.faults },
      files: this.store.size,
      held: this.held,
      uploads: this.uploads,
    };
  }

  /** The uploads of each file, by `orderId/fileName`. */
  uploadsByFile(): Map<string, FileUploads> {
    return new Map(
      [...this.uploadsPerFile].map(([file, u]) => [
        file,
        { received: u.received, stored: u.stored, senders: u.keys.size },
      ]),
    );
  }

  setFaults(partial: Partial<SimulatorFaults>): void {
    const parsed = simulatorFaultsSchema.partial().safeParse(partial);
    if (!parsed.success) throw new Error(`invalid simulator faults:\n${z.prettifyError(parsed.error)}`);
    const changes = Object.fromEntries(Object.entries(parsed.data).filter(([, value]) => value !== undefined));
    this.faults = { ...this.faults, ...changes };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? '';
    increment(this.counts.requests, method);
    res.once('finish', () => increment(this.counts.responses, String(res.statusCode)));
    const ex = openExchange(req, res);
    const reply = await this.route(ex, method);
    if (reply) await send(ex, reply);
  }

  /** The answer to one request, or null when there is no one left to answer. */
  private async route(ex: Exchange, method: string): Promise<Reply | null> {
    const { pathname, query } = splitTarget(ex.req.url ?? '/');
    if (pathname === '/health') return method === 'GET' ? { status: 200, body: { ok: true } } : notAllowed('GET');
    if (!(await this.wait(this.faults.latencyMs, ex))) return null;
    if (!this.authorized(ex.req)) return problem(401, 'unauthorized', 'missing or invalid bearer token');
    const route = resolveRoute(pathname);
    if ('status' in route) return route;
    if (route.name === 'list') {
      return method === 'GET' ? this.read(ex, 'GET', () => this.list(query)) : notAllowed('GET');
    }
    const { orderId, fileName } = route;
    switch (method) {
      case 'PUT':
        return this.put(ex, orderId, fileName);
      case 'GET':
        return this.read(ex, 'GET', async () => this.receipt(orderId, fileName));
      case 'DELETE':
        return this.read(ex, 'DELETE', () => this.remove(orderId, fileName, ifMatch(ex.req)));
      default:
        return notAllowed('GET, PUT, DELETE');
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (given === undefined) return false;
    const bytes = Buffer.from(given);
    return bytes.length === this.token.length && timingSafeEqual(bytes, this.token);
  }

  /** Runs a GET, DELETE or list unless its fault draw says to fail or time out. */
  private async read(ex: Exchange, method: FaultMethod, serve: () => Promise<Reply>): Promise<Reply | null> {
    const fault = this.faults.faultMethods.includes(method) ? this.drawer.forRead() : null;
    if (fault === 'fail') return this.injectFailure();
    if (fault === 'timeout') return this.holdOpen(ex);
    return serve();
  }

  private async receipt(orderId: string, fileName: string): Promise<Reply> {
    const receipt = this.store.get(orderId, fileName);
    return receipt ? { status: 200, body: receipt } : problem(404, 'not found', 'no such file');
  }

  /** Removes a file; with `onlyKey`, only the copy written under that idempotency key (else 412). */
  private remove(orderId: string, fileName: string, onlyKey: string | undefined): Promise<Reply> {
    return this.store.withLock(orderId, fileName, async () => {
      const held = this.store.get(orderId, fileName);
      if (held && onlyKey !== undefined && held.idempotencyKey !== onlyKey) {
        return problem(412, 'precondition failed', 'the copy held carries another idempotency key');
      }
      const removed = await this.store.remove(orderId, fileName);
      return removed ? { status: 204 } : problem(404, 'not found', 'no such file');
    });
  }

  private async list(query: URLSearchParams): Promise<Reply> {
    const limit = parseLimit(query.get('limit'));
    if (limit === null) {
      return problem(400, 'bad request', `limit must be a whole number from 1 (at most ${MAX_LIST_LIMIT} is used)`);
    }
    const cursor = query.get('cursor');
    const after = cursor ? decodeCursor(cursor) : null;
    if (after === undefined) return problem(400, 'bad request', 'cursor is not one this simulator gave out');
    const { files, last } = this.store.list(after, limit);
    return { status: 200, body: { files, nextCursor: last ? encodeCursor(last) : null } };
  }

  private async put(ex: Exchange, orderId: string, fileName: string): Promise<Reply | null> {
    const checksum = headerValue(ex.req, 'x-checksum-sha256')?.toLowerCase();
    const idempotencyKey = headerValue(ex.req, 'idempotency-key');
    if (!checksum) return problem(400, 'bad request', 'missing X-Checksum-SHA256 header');
    if (!SHA256_HEX.test(checksum)) return problem(400, 'bad request', 'X-Checksum-SHA256 must be 64 hex digits');
    if (!idempotencyKey) return problem(400, 'bad request', 'missing Idempotency-Key header');
    const fault = this.faults.faultMethods.includes('PUT') ? this.drawer.forPut() : null;
    if (fault === 'fail') return this.injectFailure();
    if (fault === 'timeout') return this.holdOpen(ex);
    if (fault === 'reject') {
      this.counts.faults.reject++;
      return problem(422, 'rejected', 'rejected by a simulated business rule');
    }
    return this.receive(ex, { orderId, fileName, checksum, idempotencyKey, fault, replacing: ifMatch(ex.req) });
  }

  /** Streams an upload to a temporary file, then stores it under the file's lock. */
  private async receive(ex: Exchange, upload: Upload): Promise<Reply> {
    const temp = this.store.tempPath();
    try {
      const body = await receiveBody(ex.req, temp, upload.fault === 'corrupt');
      if (body.sha256 !== upload.checksum) {
        return problem(422, 'rejected', 'checksum mismatch', { expected: upload.checksum, received: body.sha256 });
      }
      return await this.store.withLock(upload.orderId, upload.fileName, () => this.keep(temp, upload, body));
    } finally {
      await this.store.discard(temp);
    }
  }

  private async keep(temp: string, upload: Upload, body: ReceivedBody): Promise<Reply> {
    this.uploads++;
    const file = `${upload.orderId}/${upload.fileName}`;
    const perFile = this.uploadsPerFile.get(file) ?? { received: 0, stored: 0, keys: new Set<string>() };
    this.uploadsPerFile.set(file, perFile);
    perFile.received++;
    perFile.keys.add(upload.idempotencyKey);
    const existing = this.store.get(upload.orderId, upload.fileName);
    if (upload.replacing !== undefined) {
      if (existing?.idempotencyKey !== upload.replacing) {
        return problem(412, 'precondition failed', 'the file is not held under the idempotency key If-Match names');
      }
    } else if (existing) {
      if (existing.sha256 === body.sha256) return { status: 200, body: existing };
      return problem(409, 'conflict', 'already stored with another checksum', { sha256: existing.sha256 });
    }
    const receipt: Receipt = {
      orderId: upload.orderId,
      fileName: upload.fileName,
      sha256: body.keptSha256,
      size: body.keptSize,
      idempotencyKey: upload.idempotencyKey,
      receivedAt: new Date().toISOString(),
    };
    if (upload.fault === 'drop') {
      this.counts.faults.drop++;
      return { status: 201, body: receipt };
    }
    if (upload.fault === 'corrupt') this.counts.faults.corrupt++;
    await this.store.commit(temp, receipt);
    perFile.stored++;
    return { status: 201, body: receipt };
  }

  private injectFailure(): Reply {
    this.counts.faults.fail++;
    return problem(503, 'unavailable', 'simulated failure');
  }

  /** A simulated timeout: no answer until the client goes away, the simulator closes, or the hold limit. */
  private async holdOpen(ex: Exchange): Promise<Reply | null> {
    this.counts.faults.timeout++;
    ex.req.resume();
    this.held++;
    try {
      const stillWanted = await this.wait(this.faults.timeoutHoldMs, ex);
      return stillWanted ? problem(504, 'timeout', 'held open by a simulated timeout') : null;
    } finally {
      this.held--;
    }
  }

  /** Waits `ms`; false when the client went away or the simulator closed meanwhile. */
  private async wait(ms: number, ex: Exchange): Promise<boolean> {
    const signal = AbortSignal.any([ex.abandoned, this.stopping.signal]);
    if (ms > 0 && !signal.aborted) await delay(ms, undefined, { signal }).catch(() => undefined);
    return !signal.aborted;
  }

  private failInternally(res: http.ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const reason = err instanceof Error ? err.message : String(err);
    writeReply(res, problem(500, 'internal error', reason));
  }
}

/** The key an If-Match header names: its value, without the quotes of an entity tag. */
function ifMatch(req: http.IncomingMessage): string | undefined {
  const value = headerValue(req, 'if-match');
  return value === undefined ? undefined : value.replace(/^"(.*)"$/, '$1');
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
