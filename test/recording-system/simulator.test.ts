/**
 * Simulator behaviour beyond the answer table: concurrency, durability, path safety, header
 * checks, options validation.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { simulatorOptionsSchema } from '../../src/devtools/simulator/options';
import { startSimulator } from '../../src/devtools/simulator/simulator';
import {
  bearer,
  putRequest,
  rawRequest,
  removeDir,
  sha256Of,
  startRig,
  tempDir,
  TOKEN,
  writeSource,
  type Rig,
} from './helpers';

describe('simulator: concurrent PUTs of one file', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig();
  });

  afterAll(async () => {
    await rig.close();
  });

  it('20 PUTs at once with one idempotency key store one file: exactly one 201, the rest 200', async () => {
    const source = await writeSource(rig.sourceDir, 'race.png', 256 * 1024);
    const req = putRequest('order-1', 'race.png', source, { idempotencyKey: 'seq-race' });
    const results = await Promise.all(Array.from({ length: 20 }, () => rig.client.put(req)));
    expect(results.filter((r) => r.httpStatus === 201)).toHaveLength(1);
    expect(results.filter((r) => r.httpStatus === 200)).toHaveLength(19);

    const listed = await rig.client.list();
    expect(listed.files.filter((r) => r.orderId === 'order-1' && r.fileName === 'race.png')).toHaveLength(1);
    const kept = await fs.readFile(path.join(rig.dataDir, 'files', 'order-1', 'race.png'));
    expect(sha256Of(kept)).toBe(source.sha256);
    // Nothing is left behind in the temporary folder.
    expect(await fs.readdir(path.join(rig.dataDir, 'tmp'))).toEqual([]);
  });

  it('concurrent PUTs of different bytes to one file: one wins with 201, every other gets 409 or 200', async () => {
    const sources = await Promise.all(
      Array.from({ length: 10 }, (_, i) => writeSource(rig.sourceDir, `variant-${i}.png`, `variant ${i}`)),
    );
    const settled = await Promise.allSettled(
      sources.map((source, i) =>
        rig.client.put(putRequest('order-2', 'contested.png', source, { idempotencyKey: `seq-${i}` })),
      ),
    );
    const stored = settled.filter((s) => s.status === 'fulfilled' && s.value.httpStatus === 201);
    const conflicts = settled.filter(
      (s) => s.status === 'rejected' && (s.reason as { kind?: string }).kind === 'conflict',
    );
    expect(stored).toHaveLength(1);
    expect(conflicts).toHaveLength(9);
  });
});

describe('simulator: durability', () => {
  it('files and receipts survive a restart on the same data folder', async () => {
    const dataDir = await tempDir('image-sync-sim-');
    const sourceDir = await tempDir('image-sync-src-');
    try {
      const first = await startRig({ dataDir });
      const source = await writeSource(sourceDir, 'durable.png', 10_000);
      await first.client.put(putRequest('order-1', 'durable.png', source, { idempotencyKey: 'seq-durable' }));
      const other = await writeSource(first.sourceDir, 'gone.png', 'removed before restart');
      await first.client.put(putRequest('order-1', 'gone.png', other));
      await first.client.remove('order-1', 'gone.png');
      const before = await first.client.stat('order-1', 'durable.png');
      await first.close();

      const second = await startRig({ dataDir });
      try {
        expect(await second.client.stat('order-1', 'durable.png')).toEqual(before);
        expect(await second.client.stat('order-1', 'gone.png')).toBeNull();
        expect((await second.client.list()).files).toEqual([before]);
        // The same PUT after the restart is recognised as already stored.
        const again = await second.client.put(
          putRequest('order-1', 'durable.png', source, { idempotencyKey: 'seq-durable' }),
        );
        expect(again.outcome).toBe('already-stored');
        const kept = await fs.readFile(path.join(dataDir, 'files', 'order-1', 'durable.png'));
        expect(sha256Of(kept)).toBe(source.sha256);
      } finally {
        await second.close();
      }
    } finally {
      await removeDir(dataDir);
      await removeDir(sourceDir);
    }
  });

  it('leftovers of interrupted uploads are cleared at start', async () => {
    const dataDir = await tempDir('image-sync-sim-');
    try {
      await fs.mkdir(path.join(dataDir, 'tmp'), { recursive: true });
      await fs.writeFile(path.join(dataDir, 'tmp', 'stale.part'), 'half an upload');
      const sim = await startSimulator({ dataDir, token: TOKEN });
      await sim.close();
      expect(await fs.readdir(path.join(dataDir, 'tmp'))).toEqual([]);
    } finally {
      await removeDir(dataDir);
    }
  });
});

describe('simulator: requests the adapter would never send', () => {
  let rig: Rig;
  let checksum: string;

  beforeAll(async () => {
    rig = await startRig();
    checksum = sha256Of('x');
  });

  afterAll(async () => {
    await rig.close();
  });

  const putHeaders = (): Record<string, string> => ({
    ...bearer(),
    'X-Checksum-SHA256': checksum,
    'Idempotency-Key': 'k',
  });

  it.each([
    ['"..": raw', '/records/order-1/files/..'],
    ['"..": encoded', '/records/order-1/files/%2e%2e'],
    ['"." as the name', '/records/order-1/files/.'],
    ['".." as the order', '/records/../files/x.png'],
    ['encoded "/" in the name', '/records/order-1/files/a%2Fb.png'],
    ['raw "/" in the name', '/records/order-1/files/a/b.png'],
    ['traversal via encoded "/"', '/records/order-1/files/..%2F..%2Fetc%2Fpasswd'],
    ['backslash', '/records/order-1/files/..%5Cevil.png'],
    ['encoded backslash in the order', '/records/a%5Cb/files/x.png'],
    ['NUL', '/records/order-1/files/x%00.png'],
    ['control character', '/records/order-1/files/x%0A.png'],
    ['broken percent-encoding', '/records/order-1/files/x%zz.png'],
    ['a name over 200 bytes', `/records/order-1/files/${'a'.repeat(201)}`],
  ])('path with %s answers 400 and writes nothing', async (_label, requestPath) => {
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const answer = await rawRequest(
        rig.sim.url,
        method,
        requestPath,
        putHeaders(),
        method === 'PUT' ? 'x' : undefined,
      );
      expect(answer.status, `${method} ${requestPath}`).toBe(400);
    }
    expect((await rig.client.list()).files).toEqual([]);
    expect(await fs.readdir(path.join(rig.dataDir, 'files'))).toEqual([]);
  });

  it('a name with spaces, unicode and dots inside is fine', async () => {
    const source = await writeSource(rig.sourceDir, 'odd.png', 'odd name');
    const name = 'scan 01 – été..v2.png';
    await rig.client.put(putRequest('order 9', name, source));
    expect((await rig.client.stat('order 9', name))?.fileName).toBe(name);
    await rig.client.remove('order 9', name);
  });

  it('PUT without X-Checksum-SHA256, with a malformed one, or without Idempotency-Key answers 400', async () => {
    const target = '/records/order-1/files/headers.png';
    const cases: Record<string, string>[] = [
      { ...bearer(), 'Idempotency-Key': 'k' },
      { ...bearer(), 'X-Checksum-SHA256': 'abc', 'Idempotency-Key': 'k' },
      { ...bearer(), 'X-Checksum-SHA256': checksum },
    ];
    for (const headers of cases) {
      expect((await rawRequest(rig.sim.url, 'PUT', target, headers, 'x')).status).toBe(400);
    }
    expect((await rawRequest(rig.sim.url, 'PUT', target, putHeaders(), 'x')).status).toBe(201);
    await rig.client.remove('order-1', 'headers.png');
  });

  it('the checksum header is compared without regard to case', async () => {
    const headers = { ...putHeaders(), 'X-Checksum-SHA256': checksum.toUpperCase() };
    expect((await rawRequest(rig.sim.url, 'PUT', '/records/order-1/files/upper.png', headers, 'x')).status).toBe(201);
    await rig.client.remove('order-1', 'upper.png');
  });

  it('unknown paths answer 404, wrong methods 405', async () => {
    expect((await rawRequest(rig.sim.url, 'GET', '/nothing', bearer())).status).toBe(404);
    expect((await rawRequest(rig.sim.url, 'GET', '/records/order-1', bearer())).status).toBe(404);
    expect((await rawRequest(rig.sim.url, 'POST', '/records/o/files/f', bearer())).status).toBe(405);
    expect((await rawRequest(rig.sim.url, 'DELETE', '/files', bearer())).status).toBe(405);
  });

  it('/health answers without a token; everything else wants one', async () => {
    const health = await rawRequest(rig.sim.url, 'GET', '/health');
    expect(health).toEqual({ status: 200, body: '{"ok":true}' });
    expect((await rawRequest(rig.sim.url, 'GET', '/files')).status).toBe(401);
    expect((await rawRequest(rig.sim.url, 'GET', '/files', { Authorization: `Basic ${TOKEN}` })).status).toBe(401);
    expect((await rawRequest(rig.sim.url, 'GET', '/files', { Authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await rawRequest(rig.sim.url, 'GET', '/files', bearer())).status).toBe(200);
  });

  it('401 answers do not echo the token', async () => {
    const answer = await rawRequest(rig.sim.url, 'GET', '/files', { Authorization: 'Bearer wrong-secret' });
    expect(answer.body).not.toContain('wrong-secret');
    expect(answer.body).not.toContain(TOKEN);
  });

  it('stats count requests by method and answers by status', async () => {
    const before = rig.sim.stats();
    await rig.client.stat('order-1', 'counted.png');
    await rawRequest(rig.sim.url, 'DELETE', '/records/order-1/files/counted.png', bearer());
    const after = rig.sim.stats();
    expect(after.requests.GET).toBe((before.requests.GET ?? 0) + 1);
    expect(after.requests.DELETE).toBe((before.requests.DELETE ?? 0) + 1);
    expect(after.responses['404']).toBe((before.responses['404'] ?? 0) + 2);
  });
});

describe('simulator options', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await tempDir('image-sync-sim-');
  });

  afterAll(async () => {
    await removeDir(dataDir);
  });

  it('the schema fills defaults', () => {
    expect(simulatorOptionsSchema.parse({ dataDir: '/d', token: 't' })).toEqual({
      port: 0,
      host: '127.0.0.1',
      dataDir: '/d',
      token: 't',
      failRate: 0,
      dropRate: 0,
      corruptRate: 0,
      rejectRate: 0,
      timeoutRate: 0,
      latencyMs: 0,
      timeoutHoldMs: 120_000,
      faultMethods: ['PUT', 'GET', 'DELETE'],
    });
  });

  it.each([
    [{ failRate: 1.1 }, 'failRate'],
    [{ dropRate: -0.1 }, 'dropRate'],
    [{ corruptRate: Number.NaN }, 'corruptRate'],
    [{ latencyMs: -5 }, 'latencyMs'],
    [{ port: 70000 }, 'port'],
    [{ port: 1.5 }, 'port'],
    [{ token: '' }, 'token'],
    [{ seed: 0.5 }, 'seed'],
    [{ failrate: 0.5 }, 'failrate'],
    [{ faultMethods: ['POST'] }, 'faultMethods'],
  ] as const)('refuses %o with an error naming %s', async (bad, field) => {
    const options = { dataDir, token: TOKEN, ...bad };
    expect(simulatorOptionsSchema.safeParse(options).success).toBe(false);
    await expect(startSimulator(options as never)).rejects.toThrow(field);
  });

  it('a taken port is reported, not ignored', async () => {
    const first = await startSimulator({ dataDir, token: TOKEN });
    try {
      await expect(startSimulator({ dataDir, token: TOKEN, port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });

  it('close() can be called twice', async () => {
    const sim = await startSimulator({ dataDir, token: TOKEN });
    await sim.close();
    await sim.close();
    const client = new HttpRecordingSystem({ baseUrl: sim.url, token: TOKEN });
    await expect(client.list()).rejects.toMatchObject({ kind: 'network' });
  });
});
