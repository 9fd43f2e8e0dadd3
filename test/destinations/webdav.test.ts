/**
 * The webdav kind against a real WebDAV store (Debian's lighttpd with mod_webdav, started by the
 * project's script): every core behaviour, plus the conditional requests the adapter relies on.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startWebDavServer } from '../../src/devtools/destinations/webdav-server';
import { WebDavRecordingSystem } from '../../src/recording-system/webdav-adapter';
import { describeDestination, primitiveRequest } from './behaviours';

async function webdavRig() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-webdav-'));
  const server = await startWebDavServer({ dir });
  const auth = { username: server.username, password: server.password };
  return {
    server,
    dir,
    system: (ns: string) => {
      // The target's root collection exists on a real store: made here as the folder lighttpd serves.
      mkdirSync(path.join(server.root, ns), { recursive: true });
      return new WebDavRecordingSystem({ url: `${server.url}/${ns}`, auth, requestTimeoutMs: 2_000 });
    },
    stop: () => server.stop(),
    start: () => server.start(),
    close: () => server.close(),
  };
}

describeDestination('webdav', webdavRig);

describe('webdav adapter primitives', () => {
  it('never replaces a held file, removes only its own, and refuses a bad password', async () => {
    const rig = await webdavRig();
    const dav = rig.system('prim');
    try {
      const req = await primitiveRequest(rig.dir, 'one.bin', Buffer.alloc(3000, 1), 'k1');
      const { sha256 } = req;
      expect(await dav.put(req)).toEqual({ outcome: 'stored', httpStatus: 201 });
      expect(await dav.put(req)).toEqual({ outcome: 'already-stored', httpStatus: 200 });
      await expect(dav.put({ ...req, idempotencyKey: 'k2' })).rejects.toMatchObject({ kind: 'conflict' });
      expect(await dav.stat('o', 'one.bin')).toMatchObject({ sha256, size: 3000, idempotencyKey: 'k1' });
      expect(await dav.removeIfOwn('o', 'one.bin', 'k2')).toBe('other');
      expect(await dav.removeIfOwn('o', 'one.bin', 'k1')).toBe('removed');
      expect(await dav.remove('o', 'one.bin')).toBe('absent');
      const intruder = new WebDavRecordingSystem({
        url: `${rig.server.url}/prim`,
        auth: { username: rig.server.username, password: 'wrong-password-42' },
        requestTimeoutMs: 2_000,
      });
      const err = await intruder.stat('o', 'one.bin').catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'unauthorized' });
      expect(String((err as Error).message)).not.toContain('wrong-password-42');
    } finally {
      await dav.close();
      await rig.close();
    }
  });

  it('a GET whose body stalls ends as a timeout, and an abort by the caller stays its own', async () => {
    // A store that answers PROPFIND, then sends the GET's headers and half its body, and stalls.
    const stalled: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      if (req.method === 'PROPFIND') {
        res.writeHead(207, { 'Content-Type': 'application/xml' });
        res.end(
          '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/s/o/one.bin</D:href>' +
            '<D:propstat><D:prop><D:getcontentlength>10</D:getcontentlength></D:prop>' +
            '<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>',
        );
        return;
      }
      res.writeHead(200, { 'Content-Length': '10' });
      res.write('12345');
      stalled.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const dav = new WebDavRecordingSystem({
      url: `http://127.0.0.1:${port}/s`,
      auth: { username: 'u', password: 'p' },
      requestTimeoutMs: 300,
    });
    try {
      const err = await dav.stat('o', 'one.bin').catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'timeout' });
      expect(String((err as Error).message)).toContain('GET');
      // The caller's own abort still comes out as the caller's.
      const caller = new AbortController();
      const aborted = dav.stat('o', 'one.bin', { signal: caller.signal }).catch((e: unknown) => e);
      await expect.poll(() => stalled.length).toBe(2);
      caller.abort(new Error('stopped by the caller'));
      expect(await aborted).toMatchObject({ message: 'stopped by the caller' });
    } finally {
      for (const res of stalled) res.destroy();
      await dav.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
