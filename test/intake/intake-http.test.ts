/**
 * The intake server's own duties, over real HTTP with a real client (undici), in front of a
 * small backend written here that counts its calls: who may call (bearer tokens, mutual TLS),
 * what may be asked (body schema, limits, paths confined to the source roots), how each
 * outcome of the backend is answered, the OpenAPI document, /health, and the graceful stop.
 * Whatever is refused must not reach the backend: every refusal checks the backend's counts.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent, fetch, type Dispatcher } from 'undici';
import { z } from 'zod';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCodecAuthenticator } from '../../src/codec/auth';
import { makeTestPki } from '../../src/devtools/destinations/pki';
import type { IntakeBackend, IntakeOrderStatus, IntakeSubmission, SubmitOutcome } from '../../src/intake/backend';
import { resolveSourceRoots, type SourceRoot } from '../../src/intake/http/confine';
import { IntakeMetrics } from '../../src/intake/http/metrics';
import { openApiDocument } from '../../src/intake/http/openapi';
import { MAX_FILES_PER_SUBMISSION, submissionBodySchema } from '../../src/intake/http/schema';
import { startIntakeServer, type IntakeServer, type IntakeServerOptions } from '../../src/intake/http/server';

const TOKEN = 'intake-token-0123456789abcdef';
const OTHER_TOKEN = 'intake-token-other-0123456789';

/** A backend that answers what the test sets and counts what reaches it. */
class CountingBackend implements IntakeBackend {
  submissions: IntakeSubmission[] = [];
  statusCalls = 0;
  next: SubmitOutcome | Error = { kind: 'accepted', submissionId: 'sub-1', replayed: false };
  gate: Promise<void> | undefined;
  readyAnswer: { ok: boolean; reason?: string } = { ok: true };
  orders = new Map<string, IntakeOrderStatus>();

  async submit(submission: IntakeSubmission): Promise<SubmitOutcome> {
    this.submissions.push(submission);
    if (this.gate) await this.gate;
    if (this.next instanceof Error) throw this.next;
    return this.next;
  }
  async orderStatus(orderId: string): Promise<IntakeOrderStatus | undefined> {
    this.statusCalls += 1;
    return this.orders.get(orderId);
  }
  async ready() {
    return this.readyAnswer;
  }
  async close() {}
}

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(
  base: string,
  route: string,
  init: {
    method?: string;
    token?: string | null;
    key?: string | null;
    body?: unknown;
    raw?: string;
    contentType?: string;
    dispatcher?: Dispatcher;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.key !== null && (init.method ?? 'GET') === 'POST') headers['idempotency-key'] = init.key ?? 'key-1';
  const body = init.raw ?? (init.body !== undefined ? JSON.stringify(init.body) : undefined);
  if (body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
  const res = await fetch(`${base}${route}`, {
    method: init.method ?? 'GET',
    headers,
    body,
    ...(init.dispatcher ? { dispatcher: init.dispatcher } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

describe('the intake server', () => {
  let dir: string;
  let rootA: string;
  let rootB: string;
  let outside: string;
  let roots: SourceRoot[];
  let backend: CountingBackend;
  let server: IntakeServer;
  let base: string;
  const logs: string[] = [];
  const logger = {
    info: (f: Record<string, unknown>, m: string) => logs.push(JSON.stringify({ ...f, m })),
    warn: (f: Record<string, unknown>, m: string) => logs.push(JSON.stringify({ ...f, m })),
    error: (f: Record<string, unknown>, m: string) => logs.push(JSON.stringify({ ...f, m })),
  };
  const metrics = new IntakeMetrics();
  const servers: IntakeServer[] = [];

  async function start(extra: Partial<IntakeServerOptions> = {}): Promise<IntakeServer> {
    const s = await startIntakeServer({
      backend,
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
      roots,
      port: 0,
      logger,
      metrics,
      targets: { defaultTarget: 'default', names: ['default', 'claims'] },
      ...extra,
    });
    servers.push(s);
    return s;
  }

  const submit = (body: unknown, init: Parameters<typeof call>[2] = {}, orderId = 'ORD-1') =>
    call(base, `/v1/orders/${orderId}/files`, { method: 'POST', body, ...init });

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'image-sync-intake-http-')));
    rootA = path.join(dir, 'rootA');
    rootB = path.join(dir, 'rootB');
    outside = path.join(dir, 'outside');
    for (const d of [rootA, rootB, outside, path.join(rootA, 'ORD-1'), path.join(rootA, 'a-folder')])
      await mkdir(d, { recursive: true });
    await writeFile(path.join(rootA, 'ORD-1', 'scan.png'), 'png bytes');
    await writeFile(path.join(rootA, 'ORD-1', 'form.pdf'), 'pdf bytes!');
    await writeFile(path.join(rootB, 'other.jpg'), 'jpg');
    await writeFile(path.join(outside, 'secret.txt'), 'not for shipping');
    await symlink(path.join(outside, 'secret.txt'), path.join(rootA, 'escape.png'));
    await symlink(path.join(outside), path.join(rootA, 'escape-dir'));
    await symlink(path.join(rootA, 'ORD-1', 'scan.png'), path.join(rootA, 'alias.png'));
    roots = await resolveSourceRoots([rootA, rootB]);
    backend = new CountingBackend();
    server = await start();
    base = server.url;
  });

  afterAll(async () => {
    for (const s of servers) await s.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    backend.submissions = [];
    backend.statusCalls = 0;
    backend.next = { kind: 'accepted', submissionId: 'sub-1', replayed: false };
    backend.gate = undefined;
    backend.readyAnswer = { ok: true };
  });

  const good = { files: [{ fileName: 'scan.png', path: 'ORD-1/scan.png' }] };

  it('takes a valid submission: 202 with the status URL, the backend gets resolved paths and a body hash', async () => {
    const a = await submit(
      {
        files: [
          { fileName: 'scan.png', path: 'ORD-1/scan.png', size: 9 },
          { fileName: 'x.jpg', path: path.join(rootB, 'other.jpg'), target: 'claims', sha256: 'A'.repeat(64) },
        ],
      },
      { key: 'k-accept' },
    );
    expect(a.status).toBe(202);
    expect(a.body).toEqual({
      submissionId: 'sub-1',
      orderId: 'ORD-1',
      files: 2,
      replayed: false,
      statusUrl: '/v1/orders/ORD-1',
    });
    expect(backend.submissions).toHaveLength(1);
    const s = backend.submissions[0]!;
    expect(s.orderId).toBe('ORD-1');
    expect(s.idempotencyKey).toBe('k-accept');
    expect(s.bodySha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.files).toEqual([
      {
        fileName: 'scan.png',
        sourcePath: path.join(rootA, 'ORD-1', 'scan.png'),
        size: 9,
        target: 'default',
        contentType: 'image/png',
      },
      {
        fileName: 'x.jpg',
        sourcePath: path.join(rootB, 'other.jpg'),
        sha256: 'a'.repeat(64),
        target: 'claims',
        contentType: 'image/jpeg',
      },
    ]);
    // The same files in another order hash the same; another file does not.
    await submit({
      files: [
        { fileName: 'x.jpg', path: path.join(rootB, 'other.jpg'), target: 'claims', sha256: 'a'.repeat(64) },
        { fileName: 'scan.png', path: path.join(rootA, 'ORD-1/scan.png'), size: 9 },
      ],
    });
    await submit({ files: [{ fileName: 'scan.png', path: 'ORD-1/form.pdf' }] });
    expect(backend.submissions[1]!.bodySha256).toBe(s.bodySha256);
    expect(backend.submissions[2]!.bodySha256).not.toBe(s.bodySha256);
    // A symbolic link that stays inside the roots is taken, as the file it points to.
    await submit({ files: [{ fileName: 'alias.png', path: 'alias.png' }] });
    expect(backend.submissions[3]!.files[0]!.sourcePath).toBe(path.join(rootA, 'ORD-1', 'scan.png'));
  });

  it('refuses a request without a valid bearer token with 401, reading nothing and calling nothing', async () => {
    for (const token of [null, OTHER_TOKEN, '', 'Basic abc']) {
      const a = await submit(good, { token });
      expect(a.status, String(token)).toBe(401);
      expect(a.body.error.code).toBe('unauthorized');
      expect(a.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await call(base, '/v1/orders/ORD-1', { token: null })).status).toBe(401);
    expect((await call(base, '/v1/orders/ORD-1/files/scan.png', { token: OTHER_TOKEN })).status).toBe(401);
    expect((await call(base, '/v1/openapi.json', { token: null })).status).toBe(401);
    // Without a credential, not even which paths exist is told.
    expect((await call(base, '/v1/nothing-here', { token: null })).status).toBe(401);
    expect(backend.submissions).toHaveLength(0);
    expect(backend.statusCalls).toBe(0);
    // No token, good or bad, ever reaches the log.
    expect(logs.join('\n')).not.toContain(TOKEN);
    expect(logs.join('\n')).not.toContain(OTHER_TOKEN);
  });

  it('refuses a missing or bad Idempotency-Key, a bad order id, a non-JSON body with 400 or 415 naming the field', async () => {
    let a = await submit(good, { key: null });
    expect(a.status).toBe(400);
    expect(a.body.error).toMatchObject({ code: 'invalid_request', field: 'Idempotency-Key' });
    a = await submit(good, { key: 'has space' });
    expect(a.body.error.field).toBe('Idempotency-Key');
    a = await submit(good, {}, 'ORD%2F..%2Fetc');
    expect(a.status).toBe(400);
    expect(a.body.error.field).toBe('orderId');
    a = await submit(good, {}, 'bad%01id');
    expect(a.body.error.field).toBe('orderId');
    a = await submit(undefined, { raw: '{"files": [' });
    expect(a.status).toBe(400);
    expect(a.body.error.message).toMatch(/not JSON/);
    a = await submit(undefined, { raw: JSON.stringify(good), contentType: 'text/plain' });
    expect(a.status).toBe(415);
    expect(backend.submissions).toHaveLength(0);
  });

  it('refuses bad bodies with 400 naming every field refused', async () => {
    const cases: [unknown, string][] = [
      [{}, 'files'],
      [{ files: [] }, 'files'],
      [[], ''],
      [{ files: [{ path: 'ORD-1/scan.png' }] }, 'files[0].fileName'],
      [{ files: [{ fileName: '..', path: 'ORD-1/scan.png' }] }, 'files[0].fileName'],
      [{ files: [{ fileName: 'a/b', path: 'ORD-1/scan.png' }] }, 'files[0].fileName'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', sha256: 'xyz' }] }, 'files[0].sha256'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', size: -1 }] }, 'files[0].size'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', size: 3 }] }, 'files[0].size'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', target: 'nowhere' }] }, 'files[0].target'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', contentType: 'png' }] }, 'files[0].contentType'],
      [{ files: [{ fileName: 'a.png', path: 'ORD-1/scan.png', extra: 1 }] }, 'files[0].extra'],
      [
        {
          files: [
            { fileName: 'a.png', path: 'ORD-1/scan.png' },
            { fileName: 'a.png', path: 'ORD-1/form.pdf' },
          ],
        },
        'files[1].fileName',
      ],
      [
        {
          files: Array.from({ length: MAX_FILES_PER_SUBMISSION + 1 }, (_, i) => ({
            fileName: `f${i}`,
            path: 'ORD-1/scan.png',
          })),
        },
        'files',
      ],
    ];
    for (const [body, field] of cases) {
      const a = await submit(body);
      expect(a.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(a.body.error.code).toBe('invalid_request');
      expect(a.body.error.field, JSON.stringify(body).slice(0, 80)).toBe(field);
      expect(a.body.error.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    // Several problems at once: each is named.
    const a = await submit({
      files: [
        { fileName: '..', path: '/etc/passwd' },
        { fileName: 'ok.png', path: 'missing.png' },
      ],
    });
    expect(a.body.error.errors.map((e: { field: string }) => e.field)).toEqual(['files[0].fileName']);
    const b = await submit({
      files: [
        { fileName: 'one.png', path: '/etc/passwd' },
        { fileName: 'ok.png', path: 'missing.png' },
      ],
    });
    expect(b.body.error.errors.map((e: { field: string }) => e.field)).toEqual(['files[0].path', 'files[1].path']);
    expect(backend.submissions).toHaveLength(0);
  });

  it('confines paths to the source roots: outside, through .., through a symbolic link, missing or not a file is 400', async () => {
    const cases: [string, RegExp][] = [
      ['/etc/passwd', /outside the source roots/],
      [path.join(outside, 'secret.txt'), /outside the source roots/],
      ['../outside/secret.txt', /must not contain "\.\."/],
      ['ORD-1/../../outside/secret.txt', /must not contain "\.\."/],
      [`${rootA}/ORD-1/../ORD-1/scan.png`, /must not contain "\.\."/],
      ['ORD-1\\..\\..\\outside\\secret.txt', /must not contain "\.\."/],
      ['escape.png', /leads outside the source roots/],
      ['escape-dir/secret.txt', /leads outside the source roots/],
      ['ORD-1/nothing.png', /does not exist/],
      ['a-folder', /not a regular file/],
      ['ORD-1/', /must name a file/],
      ['ORD-1/scan\u0000.png', /control characters/],
      [rootA, /outside the source roots/],
    ];
    for (const [p, problem] of cases) {
      const a = await submit({ files: [{ fileName: 'f.png', path: p }] });
      expect(a.status, p).toBe(400);
      expect(a.body.error.field, p).toBe('files[0].path');
      expect(a.body.error.errors[0].message, p).toMatch(problem);
    }
    expect(backend.submissions).toHaveLength(0);
  });

  it('refuses a body past the limit with 413, reaching nothing', async () => {
    const small = await start({ maxBodyBytes: 2_048 });
    const files = Array.from({ length: 100 }, (_, i) => ({ fileName: `file-${i}.png`, path: 'ORD-1/scan.png' }));
    const a = await call(small.url, '/v1/orders/ORD-1/files', { method: 'POST', body: { files } });
    expect(a.status).toBe(413);
    expect(a.body.error.code).toBe('payload_too_large');
    expect(a.body.error.message).toContain('2048');
    // Announced or not: a chunked body of the same size is cut off as it is read.
    const chunked = await fetch(`${small.url}/v1/orders/ORD-1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': 'k', 'content-type': 'application/json' },
      body: new Blob([JSON.stringify({ files })]).stream(),
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
    await chunked.text();
    // Under the limit, the same server takes it.
    expect((await call(small.url, '/v1/orders/ORD-1/files', { method: 'POST', body: good })).status).toBe(202);
    expect(backend.submissions).toHaveLength(1);
  });

  it("answers the backend's outcomes: 409 in progress, 422 key reused, 429 with Retry-After, 503 unavailable or failing", async () => {
    backend.next = { kind: 'in_progress' };
    let a = await submit(good);
    expect([a.status, a.body.error.code]).toEqual([409, 'in_progress']);
    backend.next = { kind: 'key_reused' };
    a = await submit(good);
    expect([a.status, a.body.error.code, a.body.error.field]).toEqual([422, 'key_reused', 'Idempotency-Key']);
    backend.next = { kind: 'saturated', retryAfterSeconds: 7.2, reason: '500 files waiting' };
    a = await submit(good);
    expect([a.status, a.body.error.code, a.headers.get('retry-after'), a.body.error.retryAfterSeconds]).toEqual([
      429,
      'saturated',
      '8',
      8,
    ]);
    expect(a.body.error.message).toContain('500 files waiting');
    backend.next = { kind: 'unavailable', reason: 'Temporal is away' };
    a = await submit(good);
    expect([a.status, a.body.error.code]).toEqual([503, 'unavailable']);
    backend.next = new Error('connection refused to the ledger at postgres://user:secret@db');
    a = await submit(good);
    expect([a.status, a.body.error.code]).toEqual([503, 'unavailable']);
    // The backend's own error text stays in the server's log, not the answer.
    expect(JSON.stringify(a.body)).not.toContain('secret');
    backend.next = { kind: 'accepted', submissionId: 'sub-9', replayed: true };
    a = await submit(good);
    expect([a.status, a.body.replayed, a.body.submissionId]).toEqual([202, true, 'sub-9']);
    expect(backend.submissions).toHaveLength(6);
  });

  it("serves each order's and file's status from the backend, 404 for what the intake never took", async () => {
    const status: IntakeOrderStatus = {
      orderId: 'ORD-7',
      files: [
        {
          fileName: 'a b.png',
          target: 'default',
          state: 'RECORDED',
          interactionId: 'i-1',
          resends: 1,
          updatedAt: '2026-12-04T18:00:00.000Z',
        },
        {
          fileName: 'c.png',
          target: 'default',
          state: 'ACCEPTED',
          interactionId: null,
          resends: 0,
          updatedAt: '2026-12-04T18:00:01.000Z',
        },
      ],
    };
    backend.orders.set('ORD-7', status);
    expect((await call(base, '/v1/orders/ORD-7')).body).toEqual(status);
    const file = await call(base, '/v1/orders/ORD-7/files/a%20b.png');
    expect([file.status, file.body]).toEqual([200, status.files[0]]);
    expect((await call(base, '/v1/orders/ORD-7/files/zzz.png')).status).toBe(404);
    expect((await call(base, '/v1/orders/ORD-8')).status).toBe(404);
    expect((await call(base, '/v1/orders/ORD-7', { method: 'DELETE' })).status).toBe(405);
    expect((await call(base, '/v1/orders/ORD-7/files')).status).toBe(405);
  });

  it('serves the OpenAPI document generated from the schemas the requests are validated with', async () => {
    const a = await call(base, '/v1/openapi.json');
    expect(a.status).toBe(200);
    expect(a.body).toEqual(openApiDocument({ version: '0.0.0' }));
    const { $schema: _s, ...bodySchema } = z.toJSONSchema(submissionBodySchema, { io: 'input' }) as Record<
      string,
      unknown
    >;
    expect(a.body.components.schemas.SubmissionBody).toEqual(bodySchema);
    expect(a.body.components.schemas.SubmissionBody.properties.files.maxItems).toBe(MAX_FILES_PER_SUBMISSION);
    expect(Object.keys(a.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/orders/{orderId}/files',
        '/v1/orders/{orderId}',
        '/v1/orders/{orderId}/files/{fileName}',
      ]),
    );
    expect(Object.keys(a.body.paths['/v1/orders/{orderId}/files'].post.responses)).toEqual(
      expect.arrayContaining(['202', '400', '401', '409', '413', '422', '429', '503']),
    );
  });

  it('answers /health without a credential from the backend readiness, and counts requests in its metrics', async () => {
    let a = await call(base, '/health', { token: null });
    expect([a.status, a.body]).toEqual([200, { status: 'ok' }]);
    backend.readyAnswer = { ok: false, reason: 'Temporal at 127.0.0.1:1 does not answer' };
    a = await call(base, '/health', { token: null });
    expect([a.status, a.body.status]).toEqual([503, 'Temporal at 127.0.0.1:1 does not answer']);
    const text = await metrics.text();
    expect(text).toMatch(/image_sync_intake_requests_total\{route="submit",status="401"\} [1-9]/);
    expect(text).toMatch(/image_sync_intake_requests_total\{route="health",status="503"\} [1-9]/);
  });

  it('stops gracefully: refuses new requests, lets the ones in flight finish', async () => {
    const own = await start();
    let release!: () => void;
    backend.gate = new Promise<void>((r) => (release = r));
    const inFlight = call(own.url, '/v1/orders/ORD-1/files', { method: 'POST', body: good });
    // Wait for the request to reach the backend.
    const deadline = Date.now() + 30_000;
    while (backend.submissions.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(backend.submissions).toHaveLength(1);
    const stopped = own.stop(60_000);
    // New connections are no longer taken.
    await expect(fetch(`${own.url}/health`)).rejects.toThrow();
    expect(own.inFlight()).toBe(1);
    release();
    expect((await inFlight).status).toBe(202);
    expect(await stopped).toEqual({ unfinished: 0 });
  });

  it('with mutual TLS, takes only clients holding a certificate of the CA, and still asks for the token', async () => {
    const pki = makeTestPki(path.join(dir, 'pki'));
    const tls = await start({ tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca } });
    expect(tls.url).toMatch(/^https:/);
    const withCert = new Agent({ connect: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    const withoutCert = new Agent({ connect: { ca: pki.ca } });
    try {
      expect(
        (await call(tls.url, '/v1/orders/ORD-1/files', { method: 'POST', body: good, dispatcher: withCert })).status,
      ).toBe(202);
      expect(
        (
          await call(tls.url, '/v1/orders/ORD-1/files', {
            method: 'POST',
            body: good,
            token: null,
            dispatcher: withCert,
          })
        ).status,
      ).toBe(401);
      await expect(
        call(tls.url, '/v1/orders/ORD-1/files', { method: 'POST', body: good, dispatcher: withoutCert }),
      ).rejects.toThrow();
      expect(backend.submissions).toHaveLength(1);
    } finally {
      await withCert.close();
      await withoutCert.close();
    }
  });
});
