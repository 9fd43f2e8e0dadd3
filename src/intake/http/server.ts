/**
 * The intake server: the HTTP API through which the business platform submits an order's files
 * as they appear (docs/intake-api.md). It owns what HTTP owns: who may call (a bearer token
 * compared in constant time, optionally a client certificate too), what may be asked (the
 * schemas of ./schema.ts, the body and file-count limits, paths confined to the source roots),
 * and what each outcome is called (status codes). What a submission does is the backend's
 * business (src/intake/backend.ts): nothing reaches it unless every check above passed.
 *
 * Without a valid credential the answer is 401 and the body is not even read. Every route under
 * /v1/ needs one; `GET /health` does not (container probes), and tells only whether Temporal and
 * the ledger answer.
 *
 * stop() is the graceful stop: new requests are refused (503 `stopping`, connection closed),
 * those in flight finish within the grace period, then every connection is closed.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CodecAuthenticator } from '../../codec/auth';
import type { TargetNames } from '../../config/target-names';
import { errorText } from '../../errors';
import type { IntakeBackend, SubmitOutcome } from '../backend';
import type { SourceRoot } from './confine';
import type { IntakeMetrics } from './metrics';
import { openApiDocument } from './openapi';
import {
  canonicalBodySha256,
  checkOrderId,
  invalid,
  outcomeAnswer,
  readBody,
  Refusal,
  routeOf,
  submittedFiles,
} from './requests';
import { DEFAULT_MAX_BODY_BYTES, IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE } from './schema';

/** The part of a pino logger the server uses. */
export interface IntakeLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface IntakeServerOptions {
  backend: IntakeBackend;
  /** Who may call (src/codec/auth.ts: bearer tokens known by their SHA-256, compared in constant time). */
  authenticate: CodecAuthenticator;
  /** The source roots every submitted path must resolve into (resolveSourceRoots). */
  roots: readonly SourceRoot[];
  port: number;
  host?: string;
  /** Bodies larger than this are refused with 413; DEFAULT_MAX_BODY_BYTES when absent. */
  maxBodyBytes?: number;
  /**
   * When given, a file naming a target not among them is refused (files[i].target), and a file
   * naming none is handed on with the default target's name.
   */
  targets?: TargetNames;
  /** Serve HTTPS; with `clientCa`, only clients with a certificate signed by it get through (mutual TLS). */
  tls?: { cert: Buffer | string; key: Buffer | string; clientCa?: Buffer | string };
  metrics?: IntakeMetrics;
  logger?: IntakeLogger;
  /** The version the OpenAPI document names. */
  version?: string;
  /** How long a readiness check of the backend may take (ms). */
  readyTimeoutMs?: number;
}

/** The readiness check's own time limit, longer than the backend's (5 s) so its reason is the one told. */
const READY_TIMEOUT_MS = 10_000;

export interface IntakeServer {
  url: string;
  port: number;
  /** Requests being answered now. */
  inFlight(): number;
  /**
   * The graceful stop; resolves once every connection is closed and no readiness check of the
   * backend runs any more, with how many requests were cut off.
   */
  stop(graceMs?: number): Promise<{ unfinished: number }>;
}

export async function startIntakeServer(opts: IntakeServerOptions): Promise<IntakeServer> {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const openApi = JSON.stringify(openApiDocument({ version: opts.version ?? '0.0.0', maxBodyBytes: maxBody }));
  let inFlight = 0;
  let stopping = false;
  const idleWaiters = new Set<() => void>();
  /** Readiness checks of the backend still running (one may outlive its answer): stop() awaits them. */
  const checks = new Set<Promise<unknown>>();

  async function ready(): Promise<{ ok: boolean; reason?: string }> {
    const readyMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      const check = opts.backend.ready();
      checks.add(check);
      check.then(
        () => checks.delete(check),
        () => checks.delete(check),
      );
      return await Promise.race([
        check,
        new Promise<{ ok: boolean; reason: string }>((resolve) => {
          timer = setTimeout(
            () => resolve({ ok: false, reason: `Temporal or the ledger did not answer within ${readyMs} ms` }),
            readyMs,
          );
        }),
      ]);
    } catch (err) {
      return { ok: false, reason: errorText(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  async function handle(
    req: http.IncomingMessage,
    log: Record<string, unknown>,
  ): Promise<[number, unknown, Record<string, string>]> {
    const method = req.method ?? 'GET';
    const route = routeOf(new URL(req.url ?? '/', 'http://intake').pathname);
    log.route = route?.name ?? 'other';
    if (route?.name === 'health') {
      if (!route.allow.includes(method))
        throw new Refusal(405, 'method_not_allowed', `${method} is not allowed here`, [], {
          Allow: route.allow.join(', '),
        });
      const r = stopping ? { ok: false, reason: 'stopping' } : await ready();
      return [r.ok ? 200 : 503, { status: r.ok ? 'ok' : (r.reason ?? 'not ready') }, {}];
    }
    // Every other door checks the credential first: a caller without one learns nothing, not even which paths exist.
    const verdict = await opts.authenticate(req.headers.authorization);
    if (!verdict.ok) {
      throw new Refusal(401, 'unauthorized', `unauthorized: ${verdict.reason}`, [], {
        'WWW-Authenticate': 'Bearer realm="image-sync intake"',
      });
    }
    if (!route) throw new Refusal(404, 'not_found', 'no such resource (see GET /v1/openapi.json)');
    if (!route.allow.includes(method))
      throw new Refusal(405, 'method_not_allowed', `${method} is not allowed here`, [], {
        Allow: route.allow.join(', '),
      });
    if (route.name === 'openapi') return [200, openApi, {}];
    const orderId = route.orderId!;
    checkOrderId(orderId);
    log.orderId = orderId;
    if (route.name === 'order' || route.name === 'file') {
      let status;
      try {
        status = await opts.backend.orderStatus(orderId);
      } catch (err) {
        opts.logger?.warn({ err: errorText(err), orderId }, 'intake: order status unavailable');
        throw new Refusal(503, 'unavailable', 'the order status cannot be read now: retry later', [], {
          'Retry-After': '5',
        });
      }
      if (!status) throw new Refusal(404, 'not_found', 'no file of this order was submitted through the intake');
      if (route.name === 'order') return [200, status, {}];
      const file = status.files.find((f) => f.fileName === route.fileName);
      if (!file) throw new Refusal(404, 'not_found', 'no such file of this order was submitted through the intake');
      return [200, file, {}];
    }
    // POST /v1/orders/{orderId}/files
    const keyHeader = req.headers['idempotency-key'];
    if (keyHeader === undefined) throw invalid([{ field: 'Idempotency-Key', message: 'is required (a header)' }]);
    const key = Array.isArray(keyHeader) ? '' : keyHeader.trim();
    if (!IDEMPOTENCY_KEY.test(key)) throw invalid([{ field: 'Idempotency-Key', message: IDEMPOTENCY_KEY_RULE }]);
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json')
      throw new Refusal(415, 'unsupported_media_type', 'the body must be application/json (Content-Type)');
    const bytes = await readBody(req, maxBody);
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw invalid([{ field: '', message: `the body is not JSON: ${errorText(err)}` }]);
    }
    const files = await submittedFiles(raw, opts.roots, opts.targets);
    log.files = files.length;
    let outcome: SubmitOutcome;
    try {
      outcome = await opts.backend.submit({
        orderId,
        idempotencyKey: key,
        bodySha256: canonicalBodySha256(files),
        files,
      });
    } catch (err) {
      opts.logger?.error({ err: errorText(err), orderId }, 'intake: the submission failed');
      throw new Refusal(503, 'unavailable', 'the submission could not be taken now: retry with the same key', [], {
        'Retry-After': '5',
      });
    }
    log.outcome = outcome.kind;
    if (outcome.kind === 'accepted') {
      log.submissionId = outcome.submissionId;
      log.replayed = outcome.replayed;
    }
    if (outcome.kind === 'accepted' && !outcome.replayed) opts.metrics?.filesAccepted.inc(files.length);
    return outcomeAnswer(outcome, orderId, files.length);
  }

  const handler: http.RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    inFlight += 1;
    const log: Record<string, unknown> = { method: req.method, route: 'other' };
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      inFlight -= 1;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = String(log.route);
      opts.metrics?.requests.inc({ route, status: String(res.statusCode) });
      opts.metrics?.requestSeconds.observe({ route }, seconds);
      opts.logger?.info({ ...log, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'intake request');
      if (inFlight === 0) for (const w of idleWaiters) w();
    };
    res.once('close', settle);
    const send = (status: number, body: unknown, headers: Record<string, string>) => {
      if (res.headersSent) return;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
        ...(stopping ? { Connection: 'close' } : {}),
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const refuse = (r: Refusal) => {
      // The rest of a body not read is discarded, and the connection closed after the answer.
      if (!req.complete) {
        res.setHeader('Connection', 'close');
        req.resume();
      }
      send(
        r.status,
        {
          error: {
            code: r.code,
            message: r.message,
            ...(r.errors.length > 0 ? { field: r.errors[0]!.field, errors: r.errors } : {}),
            ...(r.retryAfterSeconds !== undefined ? { retryAfterSeconds: r.retryAfterSeconds } : {}),
          },
        },
        r.headers,
      );
    };
    if (stopping) {
      refuse(
        new Refusal(503, 'stopping', 'the intake server is stopping: retry with the same key', [], {
          'Retry-After': '5',
        }),
      );
      return;
    }
    handle(req, log).then(
      ([status, body, headers]) => send(status, body, headers),
      (err: unknown) => {
        if (err instanceof Refusal) {
          log.refused = err.code;
          refuse(err);
          return;
        }
        opts.logger?.error({ ...log, err: errorText(err) }, 'intake: unexpected error');
        refuse(new Refusal(500, 'internal', 'unexpected error; retry with the same key'));
      },
    );
  };

  const server: http.Server = opts.tls
    ? https.createServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          ...(opts.tls.clientCa ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host === undefined || opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  let stopped: Promise<{ unfinished: number }> | undefined;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    inFlight: () => inFlight,
    stop(graceMs = 30_000) {
      stopped ??= (async () => {
        stopping = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inFlight > 0) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            const done = () => resolve();
            idleWaiters.add(done);
            timer = setTimeout(done, graceMs);
          });
          clearTimeout(timer);
          idleWaiters.clear();
        }
        const unfinished = inFlight;
        server.closeAllConnections();
        await closed;
        // So that the backend can be closed after this: nothing of it is still in use.
        await Promise.allSettled([...checks]);
        return { unfinished };
      })();
      return stopped;
    },
  };
}
