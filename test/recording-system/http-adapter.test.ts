/**
 * The HTTP adapter on its own: what it sends, how it classifies answers and failures, how it
 * treats cancellation, that it keeps the token out of messages, and that it streams.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { kindForStatus } from '../../src/recording-system/http-answers';
import { isRetryableKind, RecordingSystemError } from '../../src/recording-system/port';
import { putRequest, rejectionOf, removeDir, startRig, tempDir, TOKEN, writeSource, type Rig } from './helpers';

type Handler = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void;

interface FakeServer {
  url: string;
  /** What the next requests get. */
  answer(handler: Handler): void;
  close(): Promise<void>;
}

/** A server that answers whatever a test tells it to, after reading the whole request body. */
async function startFakeServer(): Promise<FakeServer> {
  let handler: Handler = (_req, _body, res) => res.writeHead(500).end();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    answer: (next) => (handler = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('HttpRecordingSystem against a scripted server', () => {
  let fake: FakeServer;
  let client: HttpRecordingSystem;
  let sourceDir: string;

  beforeAll(async () => {
    fake = await startFakeServer();
    client = new HttpRecordingSystem({ baseUrl: fake.url, token: TOKEN, requestTimeoutMs: 5_000 });
    sourceDir = await tempDir('image-sync-src-');
  });

  afterAll(async () => {
    await fake.close();
    await removeDir(sourceDir);
  });

  it('PUT sends the contract headers and the exact bytes, with a Content-Length (not chunked)', async () => {
    const source = await writeSource(sourceDir, 'sent.png', 70_000);
    let seen: { headers: http.IncomingHttpHeaders; url?: string; method?: string; body: Buffer } | undefined;
    fake.answer((req, body, res) => {
      seen = { headers: req.headers, url: req.url, method: req.method, body };
      json(res, 201, {});
    });
    await client.put(
      putRequest('order 1', 'scan #1.png', source, { idempotencyKey: 'seq-17', contentType: 'image/tiff' }),
    );
    expect(seen?.method).toBe('PUT');
    expect(seen?.url).toBe('/records/order%201/files/scan%20%231.png');
    expect(seen?.headers).toMatchObject({
      'content-type': 'image/tiff',
      'content-length': String(source.size),
      'x-checksum-sha256': source.sha256,
      'idempotency-key': 'seq-17',
      authorization: `Bearer ${TOKEN}`,
    });
    expect(seen?.headers['transfer-encoding']).toBeUndefined();
    expect(seen?.body.length).toBe(source.size);
  });

  it('keeps a path prefix of the base URL and sends list parameters', async () => {
    const urls: string[] = [];
    fake.answer((req, _body, res) => {
      urls.push(req.url ?? '');
      json(res, 200, { files: [], nextCursor: null });
    });
    const prefixed = new HttpRecordingSystem({ baseUrl: `${fake.url}/api/v1/`, token: TOKEN });
    await prefixed.list({ cursor: 'abc+/=', limit: 10 });
    await prefixed.list();
    expect(urls).toEqual(['/api/v1/files?cursor=abc%2B%2F%3D&limit=10', '/api/v1/files']);
  });

  it.each([
    [409, 'conflict', false],
    [422, 'rejected', false],
    [401, 'unauthorized', false],
    [403, 'unauthorized', false],
    [500, 'unavailable', true],
    [502, 'unavailable', true],
    [503, 'unavailable', true],
    [504, 'unavailable', true],
    [429, 'unavailable', true],
    [408, 'unavailable', true],
    [400, 'protocol', false],
    [404, 'protocol', false],
    [418, 'protocol', false],
  ] as const)(
    'PUT answered %i is %s (retryable %s), with status and body excerpt in the message',
    async (status, kind, retryable) => {
      const source = await writeSource(sourceDir, 'classified.png', 'x');
      fake.answer((_req, _body, res) => {
        res.writeHead(status, { Location: '/elsewhere', 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'scripted', reason: `because ${status}` }));
      });
      const err = await rejectionOf(client.put(putRequest('order-1', 'classified.png', source)));
      expect(err).toBeInstanceOf(RecordingSystemError);
      expect(err).toMatchObject({ kind, retryable, httpStatus: status });
      expect((err as Error).message).toContain(String(status));
      expect((err as Error).message).toContain(`because ${status}`);
      expect((err as Error).message).toContain('PUT /records/order-1/files/classified.png');
    },
  );

  it('a redirect is a protocol error: the contract has none, and an upload is not replayed', async () => {
    const source = await writeSource(sourceDir, 'redirected.png', 'x');
    fake.answer((_req, _body, res) => res.writeHead(307, { Location: '/elsewhere' }).end());
    const errors = await Promise.all([
      rejectionOf(client.put(putRequest('o', 'redirected.png', source))),
      rejectionOf(client.stat('o', 'f')),
    ]);
    for (const err of errors) {
      expect(err).toMatchObject({ kind: 'protocol', retryable: false });
      expect((err as Error).message).toContain('redirect');
    }
  });

  it('a long error body is cut to a short excerpt', async () => {
    fake.answer((_req, _body, res) => res.writeHead(500).end('x'.repeat(100_000)));
    const err = (await rejectionOf(client.stat('o', 'f'))) as Error;
    expect(err.message.length).toBeLessThan(400);
    expect(err.message).toContain('…');
  });

  it('stat, remove and list treat unexpected answers as errors too', async () => {
    fake.answer((_req, _body, res) => json(res, 201, {}));
    expect(await rejectionOf(client.stat('o', 'f'))).toMatchObject({ kind: 'protocol', httpStatus: 201 });
    fake.answer((_req, _body, res) => json(res, 200, {}));
    expect(await rejectionOf(client.remove('o', 'f'))).toMatchObject({ kind: 'protocol', httpStatus: 200 });
    fake.answer((_req, _body, res) => json(res, 503, {}));
    expect(await rejectionOf(client.list())).toMatchObject({ kind: 'unavailable', retryable: true });
  });

  it('a 200 whose body is not JSON, or not a receipt, is a protocol error', async () => {
    fake.answer((_req, _body, res) => res.writeHead(200).end('<html>proxy login</html>'));
    const notJson = await rejectionOf(client.stat('o', 'f'));
    expect(notJson).toMatchObject({ kind: 'protocol', retryable: false });
    expect((notJson as Error).message).toContain('proxy login');

    fake.answer((_req, _body, res) => json(res, 200, { orderId: 'o', fileName: 'f', sha256: 'x', size: 'big' }));
    expect(await rejectionOf(client.stat('o', 'f'))).toMatchObject({ kind: 'protocol' });

    fake.answer((_req, _body, res) => json(res, 200, { files: [{ nope: true }], nextCursor: null }));
    expect(await rejectionOf(client.list())).toMatchObject({ kind: 'protocol' });
  });

  it('the token never appears in an error message, even when the server echoes it', async () => {
    const echo: Handler = (req, _body, res) => res.writeHead(500).end(`you sent ${req.headers.authorization}`);
    fake.answer(echo);
    const source = await writeSource(sourceDir, 'echo.png', 'x');
    const errors = [
      await rejectionOf(client.put(putRequest('o', 'echo.png', source))),
      await rejectionOf(client.stat('o', 'f')),
    ];
    fake.answer((req, _body, res) => res.writeHead(200).end(`not json ${req.headers.authorization}`));
    errors.push(await rejectionOf(client.stat('o', 'f')));
    fake.answer((req, _body, res) => res.writeHead(418).end(`teapot ${req.headers.authorization}`));
    errors.push(await rejectionOf(client.list()));
    for (const err of errors) {
      expect(err).toBeInstanceOf(RecordingSystemError);
      expect((err as Error).message).not.toContain(TOKEN);
      expect((err as Error).message).toContain('[redacted]');
      expect(String((err as Error).stack)).not.toContain(TOKEN);
    }
  });

  it('names that are not one safe path segment, and header values HTTP cannot carry, are refused before any request', async () => {
    let calls = 0;
    const counting = new HttpRecordingSystem({
      baseUrl: fake.url,
      token: TOKEN,
      fetchImpl: async (input, init) => {
        calls++;
        return fetch(input, init);
      },
    });
    const source = await writeSource(sourceDir, 'ok.png', 'x');
    const badNames: [string, string][] = [
      ['o', '..'],
      ['o', '.'],
      ['..', 'f'],
      ['o', ''],
      ['o', 'a/b'],
      ['o', 'nul\u0000'],
    ];
    for (const [orderId, fileName] of badNames) {
      expect(await rejectionOf(counting.remove(orderId, fileName))).toMatchObject({
        kind: 'protocol',
        retryable: false,
      });
      expect(await rejectionOf(counting.stat(orderId, fileName))).toMatchObject({ kind: 'protocol' });
      expect(await rejectionOf(counting.put(putRequest(orderId, fileName, source)))).toMatchObject({
        kind: 'protocol',
      });
    }
    for (const bad of [
      { idempotencyKey: 'clé-1' },
      { idempotencyKey: '' },
      { contentType: 'image/png\r\nX-Evil: 1' },
    ]) {
      expect(await rejectionOf(counting.put(putRequest('o', 'f', source, bad)))).toMatchObject({ kind: 'protocol' });
    }
    expect(calls).toBe(0);
  });

  it('a missing source file or one of another size is a local error, not a recording-system answer', async () => {
    const source = await writeSource(sourceDir, 'sized.png', 'twelve bytes');
    const missing = await rejectionOf(
      client.put(putRequest('o', 'f', { ...source, sourcePath: `${source.sourcePath}.nope` })),
    );
    expect(missing).not.toBeInstanceOf(RecordingSystemError);
    expect(missing).toMatchObject({ code: 'ENOENT' });
    const resized = await rejectionOf(client.put(putRequest('o', 'f', { ...source, size: source.size + 1 })));
    expect(resized).not.toBeInstanceOf(RecordingSystemError);
    expect((resized as Error).message).toMatch(/12 bytes/);
  });

  it('refuses a list limit outside 1..1000 before any request', async () => {
    for (const limit of [0, 1001, 2.5]) {
      await expect(client.list({ limit })).rejects.toThrow(RangeError);
    }
  });

  it('refuses bad settings at construction', () => {
    expect(() => new HttpRecordingSystem({ baseUrl: 'not a url', token: TOKEN })).toThrow(/not a valid URL/);
    expect(() => new HttpRecordingSystem({ baseUrl: 'ftp://host', token: TOKEN })).toThrow(/http or https/);
    expect(() => new HttpRecordingSystem({ baseUrl: 'http://u:p@host', token: TOKEN })).toThrow(/credentials/);
    expect(() => new HttpRecordingSystem({ baseUrl: fake.url, token: '' })).toThrow(/token/);
    expect(() => new HttpRecordingSystem({ baseUrl: fake.url, token: TOKEN, requestTimeoutMs: 0 })).toThrow(
      /requestTimeoutMs/,
    );
  });
});

describe('HttpRecordingSystem failures to get an answer', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig({ timeoutRate: 1 });
  });

  afterAll(async () => {
    await rig.close();
  });

  it('connection refused is a retryable network error', async () => {
    const port = await closedPort();
    const nobody = new HttpRecordingSystem({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN });
    const source = await writeSource(rig.sourceDir, 'refused.png', 'x');
    const errors = await Promise.all([
      rejectionOf(nobody.put(putRequest('o', 'f', source))),
      rejectionOf(nobody.stat('o', 'f')),
      rejectionOf(nobody.remove('o', 'f')),
      rejectionOf(nobody.list()),
    ]);
    for (const err of errors) {
      expect(err).toMatchObject({ kind: 'network', retryable: true, httpStatus: undefined });
      expect((err as Error).message).toContain('ECONNREFUSED');
      expect((err as Error).message).not.toContain(TOKEN);
    }
  });

  it('an unknown host is a retryable network error', async () => {
    const nowhere = new HttpRecordingSystem({ baseUrl: 'http://recording-system.invalid', token: TOKEN });
    expect(await rejectionOf(nowhere.stat('o', 'f'))).toMatchObject({ kind: 'network', retryable: true });
  });

  it('a caller abort rethrows the AbortError itself, for PUT and for reads', async () => {
    const source = await writeSource(rig.sourceDir, 'cancelled.png', 'x');
    const controller = new AbortController();
    const put = rejectionOf(rig.client.put(putRequest('o', 'cancelled.png', source, { signal: controller.signal })));
    const stat = rejectionOf(rig.client.stat('o', 'cancelled.png', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    for (const err of [await put, await stat]) {
      expect(err).not.toBeInstanceOf(RecordingSystemError);
      expect((err as Error).name).toBe('AbortError');
    }
  });

  it('an abort with a reason rethrows that reason; an already aborted signal sends nothing', async () => {
    const reason = new Error('workflow cancelled');
    const controller = new AbortController();
    const pending = rejectionOf(rig.client.list({ signal: controller.signal }));
    setTimeout(() => controller.abort(reason), 50);
    expect(await pending).toBe(reason);

    const before = rig.sim.stats().requests.GET ?? 0;
    const err = await rejectionOf(rig.client.stat('o', 'f', { signal: AbortSignal.abort() }));
    expect((err as Error).name).toBe('AbortError');
    expect(rig.sim.stats().requests.GET ?? 0).toBe(before);
  });

  it('the request timeout still applies when the caller passes a signal', async () => {
    const impatient = new HttpRecordingSystem({ baseUrl: rig.sim.url, token: TOKEN, requestTimeoutMs: 100 });
    const err = await rejectionOf(impatient.remove('o', 'f', { signal: new AbortController().signal }));
    expect(err).toMatchObject({ kind: 'timeout', retryable: true });
    expect((err as Error).message).toContain('100 ms');
  });
});

describe('HttpRecordingSystem streams uploads', () => {
  const FILE_BYTES = 48 * 1024 * 1024;
  let rig: Rig;
  let source: Awaited<ReturnType<typeof writeSource>>;

  beforeAll(async () => {
    rig = await startRig({}, 300_000);
    source = await writeSource(rig.sourceDir, 'big.tif', FILE_BYTES);
  });

  afterEach(async () => {
    await rig.client.remove('order-big', 'big.tif');
  });

  afterAll(async () => {
    await rig.close();
  });

  /** A full garbage collection, made available at run time when the process was not started with --expose-gc. */
  function collector(): () => void {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) return exposed;
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  }

  /**
   * Peak growth of live memory (JS heap and buffers) while `work` runs. Each sample follows two
   * full collections with pauses between, so buffers already dropped are swept and not counted.
   */
  async function peakGrowth(work: () => Promise<unknown>): Promise<number> {
    const gc = collector();
    const live = async (): Promise<number> => {
      for (let i = 0; i < 2; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const baseline = await live();
    let peak = baseline;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, await live());
        // Room for the upload between samples: on a loaded machine back-to-back full collections
        // can starve it past its request timeout.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await work();
    } finally {
      running = false;
      await sampler;
    }
    return peak - baseline;
  }

  it(`a ${FILE_BYTES / 1024 / 1024} MB upload arrives intact without holding the file in memory`, async () => {
    const growth = await peakGrowth(() => rig.client.put(putRequest('order-big', 'big.tif', source)));
    expect(await rig.client.stat('order-big', 'big.tif')).toMatchObject({ sha256: source.sha256, size: FILE_BYTES });
    expect(growth).toBeLessThan(FILE_BYTES / 3);
  }, 360_000);

  it('the same measurement does notice a client that buffers the whole file', async () => {
    const buffering = new HttpRecordingSystem({
      baseUrl: rig.sim.url,
      token: TOKEN,
      // On a loaded machine this upload, sampled by full collections, took longer than a minute.
      requestTimeoutMs: 300_000,
      fetchImpl: async (input, init) => {
        const whole = Buffer.from(await new Response(init?.body).arrayBuffer());
        return fetch(input, { ...init, body: whole, duplex: undefined });
      },
    });
    const growth = await peakGrowth(() => buffering.put(putRequest('order-big', 'big.tif', source)));
    expect(growth).toBeGreaterThan(FILE_BYTES / 2);
  }, 360_000);
});

describe('error classification tables', () => {
  it('maps statuses to kinds', () => {
    expect([409, 422, 401, 403, 500, 503, 599, 400, 404, 408, 429, 302].map(kindForStatus)).toEqual([
      'conflict',
      'rejected',
      'unauthorized',
      'unauthorized',
      'unavailable',
      'unavailable',
      'unavailable',
      'protocol',
      'protocol',
      'unavailable',
      'unavailable',
      'protocol',
    ]);
  });

  it('retries only what a retry can fix', () => {
    expect(['unavailable', 'timeout', 'network'].map((k) => isRetryableKind(k as never))).toEqual([true, true, true]);
    expect(['conflict', 'rejected', 'unauthorized', 'protocol'].map((k) => isRetryableKind(k as never))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(new RecordingSystemError('timeout', 'm').retryable).toBe(true);
    expect(new RecordingSystemError('conflict', 'm', 409).retryable).toBe(false);
  });
});
