import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentTypeFor, sha256File } from '../../src/source/files';

describe('sha256File', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'image-sync-files-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('matches the known digest of a known string', async () => {
    const file = path.join(dir, 'abc.txt');
    await writeFile(file, 'abc');
    expect(await sha256File(file)).toEqual({
      sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      size: 3,
    });
  });

  it('matches node:crypto for an empty file and for a file larger than one read chunk', async () => {
    const empty = path.join(dir, 'empty.bin');
    await writeFile(empty, '');
    expect(await sha256File(empty)).toEqual({ sha256: createHash('sha256').update('').digest('hex'), size: 0 });

    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >>> 8)) & 0xff;
    const large = path.join(dir, 'large.bin');
    await writeFile(large, bytes);
    expect(await sha256File(large)).toEqual({
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
    });
  });

  it('rejects for a missing file', async () => {
    await expect(sha256File(path.join(dir, 'missing.png'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects with the abort reason when aborted', async () => {
    const file = path.join(dir, 'abc.txt');
    const reason = new Error('stop');
    await expect(sha256File(file, AbortSignal.abort(reason))).rejects.toBe(reason);
    const controller = new AbortController();
    const big = path.join(dir, 'big.bin');
    await writeFile(big, Buffer.alloc(64 * 1024 * 1024));
    const running = sha256File(big, controller.signal);
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
  });
});

describe('contentTypeFor', () => {
  it.each([
    ['a.jpg', 'image/jpeg'],
    ['a.JPEG', 'image/jpeg'],
    ['a.png', 'image/png'],
    ['scan.tif', 'image/tiff'],
    ['scan.TIFF', 'image/tiff'],
    ['policy.pdf', 'application/pdf'],
    ['x.gif', 'image/gif'],
    ['x.webp', 'image/webp'],
    ['x.heic', 'application/octet-stream'],
    ['README', 'application/octet-stream'],
    ['.png', 'application/octet-stream'],
    ['archive.png.zip', 'application/octet-stream'],
  ])('%s is %s', (fileName, contentType) => {
    expect(contentTypeFor(fileName)).toBe(contentType);
  });
});
