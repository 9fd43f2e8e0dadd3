/**
 * The s3 kind against a real S3-compatible server (versitygw, started by the project's script):
 * every core behaviour, plus what the S3 protocol itself refuses.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { startS3Server } from '../../src/devtools/destinations/s3-server';
import { S3_KEY_METADATA, S3RecordingSystem } from '../../src/recording-system/s3-adapter';
import { sha256File } from '../../src/source/files';
import { describeDestination } from './behaviours';

async function s3Rig() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-s3-'));
  const server = await startS3Server({ dir });
  return {
    server,
    system: (ns: string) =>
      new S3RecordingSystem({ ...server, prefix: `${ns}/`, forcePathStyle: true, requestTimeoutMs: 2_000 }),
    stop: () => server.stop(),
    start: () => server.start(),
    close: () => server.close(),
  };
}

describeDestination('s3', s3Rig);

describe('s3 adapter primitives', () => {
  it('the server refuses bytes that do not match the checksum, and a second create of a held key', async () => {
    const rig = await s3Rig();
    try {
      const s3 = rig.system('prim');
      const file = path.join(rig.server.dataDir, '..', 'one.bin');
      await writeFile(file, Buffer.alloc(1000, 1));
      const req = {
        orderId: 'o',
        fileName: 'one.bin',
        sourcePath: file,
        size: 1000,
        contentType: 'application/octet-stream',
        idempotencyKey: 'k1',
      };
      // A checksum the bytes do not have: refused by the server (BadDigest), nothing stored, resendable.
      await expect(s3.put({ ...req, sha256: 'ab'.repeat(32) })).rejects.toMatchObject({
        kind: 'network',
        retryable: true,
      });
      expect(await s3.stat('o', 'one.bin')).toBeNull();
      const digest = await sha256File(file);
      expect(await s3.put({ ...req, sha256: digest.sha256 })).toEqual({ outcome: 'stored', httpStatus: 201 });
      expect(await s3.put({ ...req, sha256: digest.sha256 })).toEqual({ outcome: 'already-stored', httpStatus: 200 });
      await expect(s3.put({ ...req, sha256: digest.sha256, idempotencyKey: 'k2' })).rejects.toMatchObject({
        kind: 'conflict',
      });
      expect(await s3.removeIfOwn('o', 'one.bin', 'k2')).toBe('other');
      expect((await s3.stat('o', 'one.bin'))?.idempotencyKey).toBe('k1');
      expect(await s3.removeIfOwn('o', 'one.bin', 'k1')).toBe('removed');
      expect(await s3.remove('o', 'one.bin')).toBe('absent');
      // Wrong credentials: unauthorized, and the message does not carry the secret.
      const intruder = new S3RecordingSystem({
        ...rig.server,
        secretAccessKey: 'not-the-secret-key-123',
        prefix: '',
        forcePathStyle: true,
        requestTimeoutMs: 2_000,
      });
      const err = await intruder.stat('o', 'one.bin').catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'unauthorized' });
      expect(String((err as Error).message)).not.toContain('not-the-secret-key-123');
      await intruder.close();
      await s3.close();
    } finally {
      await rig.close();
    }
  });
});

describe('s3 verification of an object the server keeps no SHA-256 for', () => {
  // image-sync's own PUTs carry x-amz-checksum-sha256, so their verification is a HEAD. An object
  // written without one (by another tool, or in parts) is read back and hashed instead.
  it('reads the object back and hashes it, so altered bytes are seen', async () => {
    const rig = await s3Rig();
    const s3 = rig.system('rb');
    // Another writer: a plain PUT with no checksum at all (no CRC trailer either).
    const other = new S3Client({
      endpoint: rig.server.endpoint,
      region: rig.server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rig.server.accessKeyId, secretAccessKey: rig.server.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    try {
      const bytes = Buffer.alloc(4000, 7);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      await other.send(
        new PutObjectCommand({
          Bucket: rig.server.bucket,
          Key: 'rb/o/plain.bin',
          Body: bytes,
          Metadata: { [S3_KEY_METADATA]: 'k-other' },
        }),
      );
      const receipt = await s3.stat('o', 'plain.bin');
      expect(receipt).toMatchObject({ sha256: sha(bytes), size: 4000, idempotencyKey: 'k-other' });
      // The listing reads each receipt the same way.
      expect((await s3.list()).files).toEqual([receipt]);
      // Bytes altered behind the server's back (its objects are plain files): the read-back hash changes.
      const altered = Buffer.alloc(4000, 8);
      await writeFile(path.join(rig.server.dataDir, rig.server.bucket, 'rb', 'o', 'plain.bin'), altered);
      expect((await s3.stat('o', 'plain.bin'))?.sha256).toBe(sha(altered));
    } finally {
      other.destroy();
      await s3.close();
      await rig.close();
    }
  });
});
