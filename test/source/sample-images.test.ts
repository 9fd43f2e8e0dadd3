import { createHash } from 'node:crypto';
import { readdir, readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles, generateSampleBatch } from '../../src/devtools/samples/sample-images';

interface Chunk {
  type: string;
  data: Buffer;
  crcValid: boolean;
}

/** Splits a PNG into chunks, checking the signature, each chunk's CRC and the chunk order. */
function readPng(bytes: Buffer): {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
  chunks: Chunk[];
  pixels: Buffer;
} {
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from('89504e470d0a1a0a', 'hex'));
  const chunks: Chunk[] = [];
  let offset = 8;
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    const stored = bytes.readUInt32BE(offset + 8 + length);
    chunks.push({ type, data, crcValid: stored === zlibCrc32(bytes.subarray(offset + 4, offset + 8 + length)) });
    offset += 12 + length;
  }
  expect(offset).toBe(bytes.length);
  expect(chunks[0]!.type).toBe('IHDR');
  expect(chunks.at(-1)!.type).toBe('IEND');
  expect(chunks.at(-1)!.data.length).toBe(0);
  const header = chunks[0]!.data;
  const pixels = inflateSync(Buffer.concat(chunks.filter((chunk) => chunk.type === 'IDAT').map((chunk) => chunk.data)));
  return {
    width: header.readUInt32BE(0),
    height: header.readUInt32BE(4),
    bitDepth: header[8]!,
    colourType: header[9]!,
    chunks,
    pixels,
  };
}

async function filesUnder(root: string): Promise<string[]> {
  const orders = (await readdir(root)).sort();
  const nested = await Promise.all(
    orders.map(async (order) => (await readdir(path.join(root, order))).sort().map((file) => `${order}/${file}`)),
  );
  return nested.flat();
}

describe('generateSampleBatch', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'image-sync-samples-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes orders x files valid PNGs within the size range, laid out for a directory scan', async () => {
    const root = path.join(dir, 'batch');
    const result = await generateSampleBatch(root, {
      orders: 3,
      filesPerOrder: 4,
      seed: 7,
      minBytes: 2_000,
      maxBytes: 90_000,
    });
    const files = await filesUnder(root);
    expect(files).toEqual(
      ['ORD-000001', 'ORD-000002', 'ORD-000003'].flatMap((order) =>
        [1, 2, 3, 4].map((n) => `${order}/page-00${n}.png`),
      ),
    );
    expect(result.files).toBe(12);

    let bytes = 0;
    const digests = new Set<string>();
    const widths = new Set<number>();
    for (const file of files) {
      const content = await readFile(path.join(root, file));
      bytes += content.length;
      digests.add(createHash('sha256').update(content).digest('hex'));
      expect(content.length).toBeGreaterThanOrEqual(2_000);
      expect(content.length).toBeLessThanOrEqual(90_000);
      const png = readPng(content);
      expect(png.chunks.every((chunk) => chunk.crcValid)).toBe(true);
      expect(png.bitDepth).toBe(8);
      expect(png.colourType).toBe(2);
      expect(png.pixels.length).toBe(png.height * (1 + png.width * 3));
      for (let row = 0; row < png.height; row++) expect(png.pixels[row * (1 + png.width * 3)]).toBe(0);
      const comment = png.chunks.find((chunk) => chunk.type === 'tEXt')!.data.toString('latin1');
      expect(comment.startsWith(`Comment\u0000image-sync sample ${file} seed 7`)).toBe(true);
      widths.add(png.width);
    }
    expect(result.bytes).toBe(bytes);
    expect(digests.size).toBe(12);
    expect(widths.size).toBeGreaterThan(1);

    const scanned = await scanDirectory(root);
    expect(scanned.errors).toEqual([]);
    expect(scanned.items).toHaveLength(12);
    expect(scanned.items.every((item) => item.contentType === 'image/png')).toBe(true);
  });

  it('is deterministic for a seed, and a different seed gives different files', async () => {
    const options = { orders: 2, filesPerOrder: 3, minBytes: 1_000, maxBytes: 20_000 };
    const first = path.join(dir, 'first');
    const second = path.join(dir, 'second');
    const other = path.join(dir, 'other');
    await generateSampleBatch(first, { ...options, seed: 42 });
    await generateSampleBatch(second, { ...options, seed: 42 });
    await generateSampleBatch(other, { ...options, seed: 43 });
    const files = await filesUnder(first);
    expect(await filesUnder(second)).toEqual(files);
    for (const file of files) {
      const a = await readFile(path.join(first, file));
      expect(await readFile(path.join(second, file))).toEqual(a);
      expect(await readFile(path.join(other, file))).not.toEqual(a);
    }
  });

  it('uses the demo defaults and hits exact sizes at the edges of the range', async () => {
    const root = path.join(dir, 'defaults');
    const result = await generateSampleBatch(root, { orders: 20, filesPerOrder: 10 });
    expect(result.files).toBe(200);
    expect((await filesUnder(root)).length).toBe(200);
    expect(result.bytes).toBeGreaterThanOrEqual(200 * 4096);
    expect(result.bytes).toBeLessThanOrEqual(200 * 65536);

    const exact = path.join(dir, 'exact');
    await generateSampleBatch(exact, { orders: 1, filesPerOrder: 3, minBytes: 300, maxBytes: 300 });
    for (const file of await filesUnder(exact)) {
      const content = await readFile(path.join(exact, file));
      expect(content.length).toBe(300);
      expect(readPng(content).chunks.every((chunk) => chunk.crcValid)).toBe(true);
    }
  });

  it('writes the same bytes as ever for a seed (pinned digests)', async () => {
    // Digests of files written by earlier versions; a change here changes every sample batch.
    const pinned = [
      {
        seed: 1,
        minBytes: 4096,
        maxBytes: 65536,
        file: 'ORD-000001/page-001.png',
        size: 50_054,
        sha256: '304d48cd705d5a0fbb3c1ba5310b3064a038be13e41c8e6989ed0bf48a3eb16b',
      },
      {
        seed: 42,
        minBytes: 300,
        maxBytes: 300,
        file: 'ORD-000001/page-001.png',
        size: 300,
        sha256: 'a19cc4d8ea21fd4214cd87b9f1d66ed30aa90b4d8543ee910f44450cc3fd1a13',
      },
      // Larger than one stored deflate block (65,535 bytes).
      {
        seed: 3,
        minBytes: 70_000,
        maxBytes: 200_000,
        file: 'ORD-000002/page-003.png',
        size: 158_883,
        sha256: 'b30d961320539f0d3bf5de0938e4e9370fd83ce934a0bceb5338474e735f4da6',
      },
    ];
    for (const { seed, minBytes, maxBytes, file, size, sha256 } of pinned) {
      const root = path.join(dir, `pinned-${seed}`);
      await generateSampleBatch(root, { orders: 2, filesPerOrder: 3, seed, minBytes, maxBytes });
      const content = await readFile(path.join(root, file));
      expect(content.length).toBe(size);
      expect(createHash('sha256').update(content).digest('hex')).toBe(sha256);
      const png = readPng(content);
      expect(png.chunks.every((chunk) => chunk.crcValid)).toBe(true);
      expect(png.pixels.length).toBe(png.height * (1 + png.width * 3));
    }
  });

  it('rejects impossible options', async () => {
    await expect(
      generateSampleBatch(path.join(dir, 'bad'), { orders: 1, filesPerOrder: 1, minBytes: 10, maxBytes: 10 }),
    ).rejects.toThrow(/at least/);
    await expect(
      generateSampleBatch(path.join(dir, 'bad'), { orders: 1, filesPerOrder: 1, minBytes: 500, maxBytes: 100 }),
    ).rejects.toThrow(RangeError);
    await expect(generateSampleBatch(path.join(dir, 'bad'), { orders: -1, filesPerOrder: 1 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('generateBlobFiles', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'image-sync-blobs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes count files of size bytes, 100 per order folder, each with its own checksum', async () => {
    const result = await generateBlobFiles(dir, { count: 250, size: 4096 });
    expect(result).toEqual({ files: 250, bytes: 250 * 4096 });
    const files = await filesUnder(dir);
    expect(files).toHaveLength(250);
    expect(files.filter((file) => file.startsWith('ORD-000001/'))).toHaveLength(100);
    expect(files.filter((file) => file.startsWith('ORD-000003/'))).toHaveLength(50);
    const digests = new Set<string>();
    for (const file of files) {
      const content = await readFile(path.join(dir, file));
      expect(content.length).toBe(4096);
      digests.add(createHash('sha256').update(content).digest('hex'));
    }
    expect(digests.size).toBe(250);
    const scanned = await scanDirectory(dir);
    expect(scanned.errors).toEqual([]);
    expect(scanned.items).toHaveLength(250);
  });

  it('handles files smaller than the distinguishing header and empty files', async () => {
    const root = path.join(dir, 'small');
    await generateBlobFiles(root, { count: 3, size: 5, filesPerOrder: 2 });
    expect((await stat(path.join(root, 'ORD-000002', 'blob-000003.bin'))).size).toBe(5);
    const empty = path.join(dir, 'empty');
    expect(await generateBlobFiles(empty, { count: 2, size: 0 })).toEqual({ files: 2, bytes: 0 });
  });
});
