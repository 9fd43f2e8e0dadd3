/**
 * The sftp kind against a real SFTP drop (Debian's OpenSSH sshd with internal-sftp, started by
 * the project's script): every core behaviour, plus the pinned host key and the rename that
 * never replaces a held file.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSftpServer } from '../../src/devtools/destinations/sftp-server';
import { SftpRecordingSystem } from '../../src/recording-system/sftp-adapter';
import { describeDestination, primitiveRequest } from './behaviours';

async function sftpRig() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-sftp-'));
  const server = await startSftpServer({ dir });
  return {
    server,
    dir,
    system: (ns: string) =>
      new SftpRecordingSystem({ ...server, root: path.join(server.root, ns), requestTimeoutMs: 2_000 }),
    stop: () => server.stop(),
    start: () => server.start(),
    close: () => server.close(),
  };
}

describeDestination('sftp', sftpRig);

describe('sftp adapter primitives', () => {
  it('pins the host key, never replaces a held file, and hashes what it reads back', async () => {
    const rig = await sftpRig();
    const sftp = rig.system('prim');
    try {
      const req = await primitiveRequest(rig.dir, 'one.bin', Buffer.alloc(5000, 1), 'k1');
      const { sha256 } = req;
      expect(await sftp.put(req)).toEqual({ outcome: 'stored', httpStatus: 201 });
      expect(await sftp.put(req)).toEqual({ outcome: 'already-stored', httpStatus: 200 });
      await expect(sftp.put({ ...req, idempotencyKey: 'k2' })).rejects.toMatchObject({ kind: 'conflict' });
      const landed = path.join(rig.server.root, 'prim', 'o', 'one.bin');
      expect(await readFile(landed)).toEqual(Buffer.alloc(5000, 1));
      // Bytes altered on the server's disk are seen: the receipt's sha256 is the read-back hash.
      await writeFile(landed, Buffer.alloc(5000, 2));
      expect((await sftp.stat('o', 'one.bin'))?.sha256).not.toBe(sha256);
      expect(await sftp.removeIfOwn('o', 'one.bin', 'k2')).toBe('other');
      expect(await sftp.removeIfOwn('o', 'one.bin', 'k1')).toBe('removed');
      expect(await sftp.remove('o', 'one.bin')).toBe('absent');
      // A server whose host key is not the pinned one is refused before any login.
      const other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
      const impostor = new SftpRecordingSystem({ ...rig.server, hostKey: other, requestTimeoutMs: 2_000 });
      await expect(impostor.stat('o', 'one.bin')).rejects.toMatchObject({
        kind: 'unauthorized',
        message: expect.stringMatching(/not the pinned hostKey/),
      });
      await impostor.close();
    } finally {
      await sftp.close();
      await rig.close();
    }
  });
});
