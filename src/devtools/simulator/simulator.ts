/**
 * A recording system for local runs and tests. It serves the HTTP contract of design.md
 * ("Recording system HTTP contract") with node:http, keeps files under a data folder so they
 * survive a restart (see store.ts), and injects faults at configured rates.
 *
 * Routes (all answers are JSON; errors are `{ error, reason }`):
 *   PUT    /records/{orderId}/files/{fileName}  201 receipt | 200 receipt already held | 409 | 422 | 400
 *   GET    /records/{orderId}/files/{fileName}  200 receipt | 404
 *   DELETE /records/{orderId}/files/{fileName}  204 | 404
 *   GET    /files?cursor=&limit=                200 { files, nextCursor }: receipts ordered by orderId then
 *                                               fileName; limit defaults to 100, larger than 1000 is
 *                                               read as 1000; the cursor is opaque (it names the last
 *                                               receipt of the previous page)
 *   GET    /health                              200 { ok: true }, for readiness probes: no token needed,
 *                                               no latency and no fault
 * Other paths answer 404, other methods on a known path 405.
 *
 * Each request other than /health goes through, in order: the latency, the token check (401,
 * nothing changes), the route (404/405), the names (400), for a PUT its headers (400), then
 * the fault draw (see faults.ts). Requests refused before the draw draw nothing.
 *
 * Names: orderId and fileName are URL-decoded, then refused with 400 when empty, '.' or '..',
 * when holding '/', '\\', NUL or another control character, or longer than 200 UTF-8 bytes.
 *
 * PUT: the body is streamed to a temporary file while its sha256 and size are computed; it is
 * never held whole in memory. A missing or malformed X-Checksum-SHA256 (64 hex digits) or a
 * missing Idempotency-Key answers 400. A body whose sha256 differs from X-Checksum-SHA256
 * answers 422 with reason "checksum mismatch" and nothing is kept. When the file is already
 * held, the same checksum answers 200 with the original receipt (whatever the idempotency
 * key) and another checksum answers 409. PUTs and DELETEs of one file are serialised, so
 * concurrent PUTs of one file store it once: one 201, the others 200.
 *
 * Faults:
 *   PUT                fail 503 | timeout | reject 422 | drop: 201 but nothing kept |
 *                      corrupt: the first byte is kept inverted (an empty body is kept as one
 *                      zero byte) and the receipt describes the bytes kept, so its sha256 differs
 *   GET, DELETE, list  fail 503 | timeout
 *   every request      latencyMs before anything else
 * faultMethods narrows the methods faults apply to (all three by default); for example
 * ['PUT'] fails uploads while receipts, listings and rollbacks still work. Requests of other
 * methods draw nothing. Latency applies whatever the methods.
 * fail, timeout and reject answer without keeping anything. drop and corrupt apply only when
 * a new file would be stored, after the checksum check (an upload of a file already held
 * answers 200 or 409 as usual, and the fault is not counted). A timeout reads and discards the
 * request body, then holds the answer until the client goes away, the simulator closes, or
 * timeoutHoldMs pass, when it answers 504.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { nameProblem } from '../../source/names';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type Receipt } from '../../recording-system/port';
import { FaultDrawer, PUT_FAULT_KINDS, type FaultKind } from './faults';
import { FileStore } from './store';

export { type FaultKind } from './faults';

const SHA256_HEX = /^[0-9a-f]{64}$/;

const probability = z
  .number()
  .min(0, 'must be a probability between 0 and 1')
  .max(1, 'must be a probability between 0 and 1');
const latency = z.number().min(0, 'must be 0 or more milliseconds');
const holdLimit = z.number().int('must be a whole number of milliseconds').min(0, 'must be 0 or more milliseconds');

export const FAULT_METHODS = ['PUT', 'GET', 'DELETE'] as const;
export type FaultMethod = (typeof FAULT_METHODS)[number];
const faultMethods = z.array(z.enum(FAULT_METHODS, 'must list only PUT, GET and DELETE'));

const faultFields = {
  /** Probability of 503 per request. */
  failRate: probability,
  /** Probability per PUT of answering 201 and keeping nothing. */
  dropRate: probability,
  /** Probability per PUT of keeping altered bytes. */
  corruptRate: probability,
  /** Probability per PUT of 422. */
  rejectRate: probability,
  /** Probability per request of holding it open without an answer. */
  timeoutRate: probability,
  /** Added to every request but /health. */
  latencyMs: latency,
  /** How long a simulated timeout holds a request before answering 504. */
  timeoutHoldMs: holdLimit,
  /** The methods faults apply to (GET covers the list); requests of other methods draw none. */
  faultMethods,
};

/** The fault settings that can change while the simulator runs (see setFaults). */
export const simulatorFaultsSchema = z.strictObject(faultFields);
export type SimulatorFaults = z.output<typeof simulatorFaultsSchema>;

/** Everything startSimulator accepts; the CLI validates its flags with it too. */
export const simulatorOptionsSchema = z.strictObject({
  /** 0 picks a free port. */
  port: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be in 0..65535')
    .max(65535, 'must be in 0..65535')
    .default(0),
  host: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  /** Folder of the files and receipts; created when missing; kept across restarts. */
  dataDir: z.string().min(1, 'must not be empty'),
  /** The bearer token every request but /health must carry. */
  token: z.string().min(1, 'must not be empty'),
  /** Makes the fault sequence repeatable; without it faults follow Math.random. */
  seed: z.number().int('must be a whole number').optional(),
  failRate: faultFields.failRate.default(0),
  dropRate: faultFields.dropRate.default(0),
  corruptRate: faultFields.corruptRate.default(0),
  rejectRate: faultFields.rejectRate.default(0),
  timeoutRate: faultFields.timeoutRate.default(0),
  latencyMs: faultFields.latencyMs.default(0),
  timeoutHoldMs: faultFields.timeoutHoldMs.default(120_000),
  faultMethods: faultFields.faultMethods.default([...FAULT_METHODS]),
});
export type SimulatorOptions = z.input<typeof simulatorOptionsSchema>;
type ParsedOptions = z.output<typeof simulatorOptionsSchema>;

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
}

export interface RunningSimulator {
  /** Base URL for clients, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** Stops listening, drops open connections (held requests included) and waits for in-flight work. */
  close(): Promise<void>;
  stats(): SimulatorStats;
  /** Changes fault settings from now on; throws on invalid values and then changes nothing. */
  setFaults(partial: Partial<SimulatorFaults>): void;
}

export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const options = parseOptions(opts);
  const store = await FileStore.open(options.dataDir);
  const simulator = new Simulator(options, store);
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => simulator.serve(req, res));
  const port = await listen(server, options.port, options.host);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(options.host)}:${port}`,
    port,
    close: () => (closing ??= shutdown(server, simulator)),
    stats: () => simulator.stats(),
    setFaults: (partial) => simulator.setFaults(partial),
  };
}

function parseOptions(opts: SimulatorOptions): ParsedOptions {
  const parsed = simulatorOptionsSchema.safeParse(opts);
  if (parsed.success) return parsed.data;
  throw new Error(`invalid simulator options:\n${z.prettifyError(parsed.error)}`, { cause: parsed.error });
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function shutdown(server: http.Server, simulator: Simulator): Promise<void> {
  simulator.stopping.abort();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  await simulator.idle();
}

/** How clients reach a listening address: wildcard addresses are reached through loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

// ---------------------------------------------------------------------------------------------
// Request handling

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Route = { name: 'file'; orderId: string; fileName: string } | { name: 'list' };

/** One request being served. `abandoned` fires when the client goes away before the answer. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  abandoned: AbortSignal;
}

interface Upload {
  orderId: string;
  fileName: string;
  checksum: string;
  idempotencyKey: string;
  fault: 'drop' | 'corrupt' | null;
}

class Simulator {
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

  constructor(options: ParsedOptions, store: FileStore) {
    this.store = store;
    this.token = Buffer.from(options.token);
    this.faults = pickFaults(options);
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
    };
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
        return this.read(ex, 'DELETE', () => this.remove(orderId, fileName));
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

  private remove(orderId: string, fileName: string): Promise<Reply> {
    return this.store.withLock(orderId, fileName, async () => {
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
    return this.receive(ex, { orderId, fileName, checksum, idempotencyKey, fault });
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
    const existing = this.store.get(upload.orderId, upload.fileName);
    if (existing) {
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

function pickFaults(options: ParsedOptions): SimulatorFaults {
  const { failRate, dropRate, corruptRate, rejectRate, timeoutRate, latencyMs, timeoutHoldMs, faultMethods } = options;
  return { failRate, dropRate, corruptRate, rejectRate, timeoutRate, latencyMs, timeoutHoldMs, faultMethods };
}

function openExchange(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
  const abandon = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abandon.abort();
  });
  return { req, res, abandoned: abandon.signal };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function problem(status: number, error: string, reason: string, extra: Record<string, unknown> = {}): Reply {
  return { status, body: { error, reason, ...extra } };
}

function notAllowed(allow: string): Reply {
  return { ...problem(405, 'method not allowed', `use ${allow}`), headers: { Allow: allow } };
}

/** Sends a reply once the request body is read to its end, so clients still sending are not cut off. */
async function send(ex: Exchange, reply: Reply): Promise<void> {
  if (!ex.req.readableEnded) {
    ex.req.resume();
    await finished(ex.req).catch(() => undefined);
  }
  if (ex.abandoned.aborted || ex.res.destroyed) return;
  writeReply(ex.res, reply);
}

function writeReply(res: http.ServerResponse, reply: Reply): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  if (reply.body === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  const text = JSON.stringify(reply.body);
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = Buffer.byteLength(text);
  res.writeHead(reply.status, headers).end(text);
}

function splitTarget(target: string): { pathname: string; query: URLSearchParams } {
  const mark = target.indexOf('?');
  if (mark < 0) return { pathname: target, query: new URLSearchParams() };
  return { pathname: target.slice(0, mark), query: new URLSearchParams(target.slice(mark + 1)) };
}

/** The route of a path, or the error reply for a path that names nothing or names it badly. */
function resolveRoute(pathname: string): Route | Reply {
  if (pathname === '/files') return { name: 'list' };
  const match = /^\/records\/([^/]+)\/files\/(.+)$/.exec(pathname);
  if (!match) return problem(404, 'not found', 'no such route');
  const [, rawOrderId = '', rawFileName = ''] = match;
  const orderId = decodeSegment(rawOrderId);
  const fileName = decodeSegment(rawFileName);
  if (orderId === null || fileName === null) return problem(400, 'bad request', 'invalid percent-encoding in the path');
  const orderProblem = nameProblem(orderId);
  if (orderProblem) return problem(400, 'bad request', `orderId ${orderProblem}`);
  const fileProblem = nameProblem(fileName);
  if (fileProblem) return problem(400, 'bad request', `fileName ${fileProblem}`);
  return { name: 'file', orderId, fileName };
}

function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.trim() || undefined;
}

/** The page size asked for: 100 when absent, at most 1000; null when not a whole number from 1. */
function parseLimit(raw: string | null): number | null {
  if (raw === null || raw === '') return DEFAULT_LIST_LIMIT;
  if (!/^\d+$/.test(raw)) return null;
  const limit = Number(raw);
  return limit >= 1 ? Math.min(limit, MAX_LIST_LIMIT) : null;
}

function encodeCursor(last: Receipt): string {
  return Buffer.from(JSON.stringify([last.orderId, last.fileName])).toString('base64url');
}

/** The position a cursor names; undefined when it is not a cursor this simulator gives out. */
function decodeCursor(cursor: string): { orderId: string; fileName: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((part) => typeof part === 'string')) {
      return { orderId: value[0] as string, fileName: value[1] as string };
    }
  } catch {
    // Falls through: not a cursor.
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Upload bodies

interface ReceivedBody {
  /** sha256 and size of the bytes the client sent. */
  sha256: string;
  size: number;
  /** sha256 and size of the bytes written to disk (they differ only when corrupting). */
  keptSha256: string;
  keptSize: number;
}

/**
 * Streams a request body to `target`, hashing what arrives and what is written. With `corrupt`
 * the first byte written is inverted (an empty body is written as one zero byte).
 */
async function receiveBody(req: http.IncomingMessage, target: string, corrupt: boolean): Promise<ReceivedBody> {
  const received = createHash('sha256');
  const kept = createHash('sha256');
  let size = 0;
  let keptSize = 0;
  let altered = !corrupt;
  const keep = (chunk: Buffer): Buffer => {
    kept.update(chunk);
    keptSize += chunk.length;
    return chunk;
  };
  const meter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      received.update(chunk);
      size += chunk.length;
      if (altered || chunk.length === 0) return done(null, keep(chunk));
      altered = true;
      const copy = Buffer.from(chunk);
      copy.writeUInt8(copy.readUInt8(0) ^ 0xff, 0);
      done(null, keep(copy));
    },
    flush(done: TransformCallback) {
      if (altered) return done();
      altered = true;
      done(null, keep(Buffer.of(0)));
    },
  });
  await pipeline(req, meter, createWriteStream(target, { flags: 'wx' }));
  return { sha256: received.digest('hex'), size, keptSha256: kept.digest('hex'), keptSize };
}
