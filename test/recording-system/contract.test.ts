/**
 * The HTTP contract of docs/recording-system-contract.md, end to end: the real adapter against the real simulator,
 * one answer of the table at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { RecordingSystemError, type Receipt } from '../../src/recording-system/port';
import { bearer, putRequest, rawRequest, rejectionOf, startRig, TOKEN, writeSource, type Rig } from './helpers';

describe('recording system contract (adapter against simulator)', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig();
  });

  afterAll(async () => {
    await rig.close();
  });

  it('PUT of a new file answers 201: stored, and the receipt describes the bytes', async () => {
    const source = await writeSource(rig.sourceDir, 'new.png', 'first image');
    const result = await rig.client.put(putRequest('order-1', 'new.png', source, { idempotencyKey: 'seq-1' }));
    expect(result).toEqual({ outcome: 'stored', httpStatus: 201 });

    const receipt = await rig.client.stat('order-1', 'new.png');
    expect(receipt).toMatchObject({
      orderId: 'order-1',
      fileName: 'new.png',
      sha256: source.sha256,
      size: source.size,
      idempotencyKey: 'seq-1',
    });
    expect(Number.isNaN(Date.parse(receipt!.receivedAt))).toBe(false);
  });

  it('PUT again with the same idempotency key and checksum answers 200: already-stored', async () => {
    const source = await writeSource(rig.sourceDir, 'again.png', 'same bytes');
    const req = putRequest('order-1', 'again.png', source, { idempotencyKey: 'seq-2' });
    expect(await rig.client.put(req)).toEqual({ outcome: 'stored', httpStatus: 201 });
    expect(await rig.client.put(req)).toEqual({ outcome: 'already-stored', httpStatus: 200 });
  });

  it('PUT with the same checksum but another idempotency key answers 200 and keeps the original receipt', async () => {
    const source = await writeSource(rig.sourceDir, 'rekeyed.png', 'rekeyed bytes');
    await rig.client.put(putRequest('order-1', 'rekeyed.png', source, { idempotencyKey: 'seq-3' }));
    const second = await rig.client.put(putRequest('order-1', 'rekeyed.png', source, { idempotencyKey: 'seq-4' }));
    expect(second.outcome).toBe('already-stored');
    expect((await rig.client.stat('order-1', 'rekeyed.png'))?.idempotencyKey).toBe('seq-3');
  });

  it('PUT of other bytes to a held file answers 409: conflict, not retryable, the original stays', async () => {
    const original = await writeSource(rig.sourceDir, 'conflict-a.png', 'version A');
    const other = await writeSource(rig.sourceDir, 'conflict-b.png', 'version B');
    await rig.client.put(putRequest('order-2', 'photo.png', original));
    const err = await rejectionOf(
      rig.client.put(putRequest('order-2', 'photo.png', other, { idempotencyKey: 'seq-x' })),
    );
    expect(err).toBeInstanceOf(RecordingSystemError);
    expect(err).toMatchObject({ kind: 'conflict', retryable: false, httpStatus: 409 });
    expect((await rig.client.stat('order-2', 'photo.png'))?.sha256).toBe(original.sha256);
  });

  it('PUT whose bytes do not match X-Checksum-SHA256 answers 422 "checksum mismatch" and keeps nothing', async () => {
    const source = await writeSource(rig.sourceDir, 'liar.png', 'actual bytes');
    const other = await writeSource(rig.sourceDir, 'liar-claim.png', 'claimed bytes');
    const err = await rejectionOf(
      rig.client.put(putRequest('order-3', 'liar.png', { ...source, sha256: other.sha256 })),
    );
    expect(err).toMatchObject({ kind: 'rejected', retryable: false, httpStatus: 422 });
    expect((err as Error).message).toContain('checksum mismatch');
    expect(await rig.client.stat('order-3', 'liar.png')).toBeNull();
  });

  it('PUT hit by a rejection answers 422: rejected, not retryable, nothing kept', async () => {
    rig.sim.setFaults({ rejectRate: 1 });
    try {
      const source = await writeSource(rig.sourceDir, 'rejected.png', 'business says no');
      const err = await rejectionOf(rig.client.put(putRequest('order-4', 'rejected.png', source)));
      expect(err).toMatchObject({ kind: 'rejected', retryable: false, httpStatus: 422 });
    } finally {
      rig.sim.setFaults({ rejectRate: 0 });
    }
    expect(await rig.client.stat('order-4', 'rejected.png')).toBeNull();
  });

  it('503 is unavailable and retryable, for PUT, GET, DELETE and list', async () => {
    const source = await writeSource(rig.sourceDir, 'down.png', 'while down');
    rig.sim.setFaults({ failRate: 1 });
    try {
      const errors = await Promise.all([
        rejectionOf(rig.client.put(putRequest('order-5', 'down.png', source))),
        rejectionOf(rig.client.stat('order-5', 'down.png')),
        rejectionOf(rig.client.remove('order-5', 'down.png')),
        rejectionOf(rig.client.list()),
      ]);
      for (const err of errors) {
        expect(err).toMatchObject({ kind: 'unavailable', retryable: true, httpStatus: 503 });
      }
    } finally {
      rig.sim.setFaults({ failRate: 0 });
    }
    // Recovery: the same PUT now goes through.
    expect((await rig.client.put(putRequest('order-5', 'down.png', source))).outcome).toBe('stored');
  });

  it('no answer within requestTimeoutMs is a retryable timeout', async () => {
    const impatient = new HttpRecordingSystem({ baseUrl: rig.sim.url, token: TOKEN, requestTimeoutMs: 150 });
    const source = await writeSource(rig.sourceDir, 'slow.png', 'never answered');
    rig.sim.setFaults({ timeoutRate: 1 });
    try {
      const started = Date.now();
      const err = await rejectionOf(impatient.put(putRequest('order-6', 'slow.png', source)));
      expect(err).toMatchObject({ kind: 'timeout', retryable: true, httpStatus: undefined });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await rejectionOf(impatient.stat('order-6', 'slow.png'))).toMatchObject({ kind: 'timeout' });
    } finally {
      rig.sim.setFaults({ timeoutRate: 0 });
    }
    expect(await rig.client.stat('order-6', 'slow.png')).toBeNull();
  });

  it('a wrong or missing token answers 401: unauthorized, not retryable, and nothing changes', async () => {
    const source = await writeSource(rig.sourceDir, 'kept.png', 'kept safe');
    await rig.client.put(putRequest('order-7', 'kept.png', source));
    const intruder = new HttpRecordingSystem({ baseUrl: rig.sim.url, token: 'not-the-token' });
    const newcomer = await writeSource(rig.sourceDir, 'intruder.png', 'sneaky');

    const errors = await Promise.all([
      rejectionOf(intruder.put(putRequest('order-7', 'intruder.png', newcomer))),
      rejectionOf(intruder.remove('order-7', 'kept.png')),
      rejectionOf(intruder.stat('order-7', 'kept.png')),
      rejectionOf(intruder.list()),
    ]);
    for (const err of errors) {
      expect(err).toMatchObject({ kind: 'unauthorized', retryable: false, httpStatus: 401 });
    }

    const noToken = await rawRequest(rig.sim.url, 'DELETE', '/records/order-7/files/kept.png');
    expect(noToken.status).toBe(401);
    const noTokenPut = await rawRequest(
      rig.sim.url,
      'PUT',
      '/records/order-7/files/intruder.png',
      { 'X-Checksum-SHA256': newcomer.sha256, 'Idempotency-Key': 'k' },
      'sneaky',
    );
    expect(noTokenPut.status).toBe(401);

    expect(await rig.client.stat('order-7', 'intruder.png')).toBeNull();
    expect((await rig.client.stat('order-7', 'kept.png'))?.sha256).toBe(source.sha256);
  });

  it('GET answers 200 with the receipt, or 404 (null) for a file not held', async () => {
    const source = await writeSource(rig.sourceDir, 'receipt.png', 'has a receipt');
    await rig.client.put(putRequest('order-8', 'receipt.png', source, { idempotencyKey: 'seq-8' }));
    const receipt = await rig.client.stat('order-8', 'receipt.png');
    expect(Object.keys(receipt!).sort()).toEqual([
      'fileName',
      'idempotencyKey',
      'orderId',
      'receivedAt',
      'sha256',
      'size',
    ]);
    expect(await rig.client.stat('order-8', 'missing.png')).toBeNull();
    expect(await rig.client.stat('no-such-order', 'receipt.png')).toBeNull();
  });

  it('DELETE answers 204 (removed) when held, then 404 (absent)', async () => {
    const source = await writeSource(rig.sourceDir, 'doomed.png', 'to be rolled back');
    await rig.client.put(putRequest('order-9', 'doomed.png', source));
    expect(await rig.client.remove('order-9', 'doomed.png')).toBe('removed');
    expect(await rig.client.stat('order-9', 'doomed.png')).toBeNull();
    expect(await rig.client.remove('order-9', 'doomed.png')).toBe('absent');
    // After removal the same path can be stored again, with other bytes.
    const replacement = await writeSource(rig.sourceDir, 'doomed-2.png', 'new bytes');
    expect((await rig.client.put(putRequest('order-9', 'doomed.png', replacement))).outcome).toBe('stored');
  });

  it('DELETE with If-Match removes only the copy written under that key: 204, 412 for another, 404 absent', async () => {
    const source = await writeSource(rig.sourceDir, 'guarded.png', 'held by one key');
    await rig.client.put(putRequest('order-10', 'guarded.png', source, { idempotencyKey: 'seq-owner' }));
    expect(await rig.client.removeIfOwn('order-10', 'guarded.png', 'seq-other')).toBe('other');
    expect((await rig.client.stat('order-10', 'guarded.png'))?.idempotencyKey).toBe('seq-owner');
    // The raw answer is 412, and an entity-tag style quoted key is read as the key.
    const path = '/records/order-10/files/guarded.png';
    expect((await rawRequest(rig.sim.url, 'DELETE', path, { ...bearer(), 'If-Match': 'seq-other' })).status).toBe(412);
    expect((await rawRequest(rig.sim.url, 'DELETE', path, { ...bearer(), 'If-Match': '"seq-owner"' })).status).toBe(
      204,
    );
    expect(await rig.client.stat('order-10', 'guarded.png')).toBeNull();
    expect(await rig.client.removeIfOwn('order-10', 'guarded.png', 'seq-owner')).toBe('absent');
    await rig.client.put(putRequest('order-10', 'guarded.png', source, { idempotencyKey: 'seq-owner' }));
    expect(await rig.client.removeIfOwn('order-10', 'guarded.png', 'seq-owner')).toBe('removed');
  });

  it('PUT with If-Match replaces only the copy written under that key: 201 under the new key, 412 otherwise', async () => {
    const source = await writeSource(rig.sourceDir, 'replaced.png', 'the same bytes');
    const req = (key: string, replacing?: string) =>
      putRequest('order-12', 'replaced.png', source, { idempotencyKey: key, ...(replacing ? { replacing } : {}) });
    // Absent: nothing to replace, nothing stored.
    await expect(rig.client.put(req('seq-new', 'seq-old'))).rejects.toMatchObject({
      kind: 'conflict',
      httpStatus: 412,
    });
    expect(await rig.client.stat('order-12', 'replaced.png')).toBeNull();
    await rig.client.put(req('seq-old'));
    // Without If-Match the same bytes under another key are already held: the old copy stays.
    expect(await rig.client.put(req('seq-new'))).toEqual({ outcome: 'already-stored', httpStatus: 200 });
    expect((await rig.client.stat('order-12', 'replaced.png'))?.idempotencyKey).toBe('seq-old');
    await expect(rig.client.put(req('seq-new', 'seq-other'))).rejects.toMatchObject({ httpStatus: 412 });
    expect((await rig.client.stat('order-12', 'replaced.png'))?.idempotencyKey).toBe('seq-old');
    expect(await rig.client.put(req('seq-new', 'seq-old'))).toEqual({ outcome: 'stored', httpStatus: 201 });
    const held = await rig.client.stat('order-12', 'replaced.png');
    expect(held).toMatchObject({ idempotencyKey: 'seq-new', sha256: source.sha256 });
  });

  it('a conditional DELETE and a PUT of the same file never lose the PUT: a copy another key wrote survives', async () => {
    const source = await writeSource(rig.sourceDir, 'raced.png', 'raced bytes');
    for (let round = 0; round < 20; round++) {
      const name = `raced-${round}.png`;
      await rig.client.put(putRequest('order-11', name, source, { idempotencyKey: 'seq-a' }));
      // Another interaction removes its own copy unconditionally and writes anew, while a
      // rollback of seq-a's copy runs: whatever the order, seq-b's copy is never removed.
      const [, , removal] = await Promise.all([
        rig.client.remove('order-11', name),
        rig.client.put(putRequest('order-11', name, source, { idempotencyKey: 'seq-b' })),
        rig.client.removeIfOwn('order-11', name, 'seq-a'),
      ]);
      const held = await rig.client.stat('order-11', name);
      if (held) expect(held.idempotencyKey).toBe('seq-b');
      expect(['removed', 'absent', 'other']).toContain(removal);
    }
  });

  it('list pages through every file in order with a cursor', async () => {
    const own = await startRig();
    try {
      const expected: string[] = [];
      for (let i = 0; i < 25; i++) {
        const orderId = `order-${String(i % 3).padStart(2, '0')}`;
        const fileName = `file-${String(i).padStart(2, '0')}.png`;
        const source = await writeSource(own.sourceDir, `${i}.png`, `bytes ${i}`);
        await own.client.put(putRequest(orderId, fileName, source));
        expected.push(`${orderId}/${fileName}`);
      }
      expected.sort();

      const pages: Receipt[][] = [];
      let cursor: string | null = null;
      do {
        const page: { files: Receipt[]; nextCursor: string | null } = await own.client.list({ cursor, limit: 10 });
        pages.push(page.files);
        cursor = page.nextCursor;
      } while (cursor !== null);

      expect(pages.map((page) => page.length)).toEqual([10, 10, 5]);
      expect(pages.flat().map((r) => `${r.orderId}/${r.fileName}`)).toEqual(expected);

      const everything = await own.client.list();
      expect(everything.files).toHaveLength(25);
      expect(everything.nextCursor).toBeNull();
    } finally {
      await own.close();
    }
  });

  it('list of an empty recording system is one empty page', async () => {
    const own = await startRig();
    try {
      expect(await own.client.list({ limit: 10 })).toEqual({ files: [], nextCursor: null });
    } finally {
      await own.close();
    }
  });

  it('list limit: default 100, more than 1000 read as 1000, invalid limit or cursor answers 400', async () => {
    const ok = await rawRequest(rig.sim.url, 'GET', '/files?limit=5000', bearer());
    expect(ok.status).toBe(200);
    for (const query of ['limit=0', 'limit=-1', 'limit=abc', 'limit=1.5', 'cursor=not-a-cursor']) {
      expect((await rawRequest(rig.sim.url, 'GET', `/files?${query}`, bearer())).status).toBe(400);
    }
  });
});
