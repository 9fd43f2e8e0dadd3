/**
 * Sample inputs for demos, tests and benchmarks.
 *
 * generateSampleBatch writes real PNG images (gradient plus noise, RGB, 8 bits a channel) laid
 * out as `dir/<orderId>/<fileName>`, ready for `image-sync start --dir`. The same seed always
 * gives byte-identical files. generateBlobFiles writes arbitrary bytes quickly, for load.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { mapWithConcurrency } from '../../source/concurrency';

// ---------------------------------------------------------------------------------------------
// A small seeded generator: a 32-bit counter stepped by the golden-ratio constant, then mixed.

/** Uniform 32-bit integers from a seed; the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
    mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
    return (mixed ^ (mixed >>> 16)) >>> 0;
  };
}

/** A seed for one file, from the batch seed and the file's position. */
function fileSeed(seed: number, orderIndex: number, fileIndex: number): number {
  const next = seededRandom(seed ^ Math.imul(orderIndex + 1, 0x27d4eb2d) ^ Math.imul(fileIndex + 1, 0x165667b1));
  return next();
}

/** An integer in [min, max]. */
function between(next: () => number, min: number, max: number): number {
  return min + Math.floor((next() / 0x1_0000_0000) * (max - min + 1));
}

// ---------------------------------------------------------------------------------------------
// PNG encoding

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bytes a chunk adds around its data: length, type, CRC. */
const CHUNK_OVERHEAD = 12;
const COMMENT_KEYWORD = 'Comment';

/** One chunk: length, type, data, and the CRC-32 of type and data (the CRC PNG and zlib share). */
function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(CHUNK_OVERHEAD + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

function headerChunk(width: number, height: number): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bits per channel
  data[9] = 2; // colour type: RGB
  data[10] = 0; // compression: deflate
  data[11] = 0; // filter method: adaptive
  data[12] = 0; // no interlace
  return pngChunk('IHDR', data);
}

/** Scanlines of a diagonal colour gradient with per-pixel noise, each with filter type 0. */
function gradientScanlines(width: number, height: number, next: () => number): Buffer {
  const rowBytes = 1 + width * 3;
  const raw = Buffer.alloc(rowBytes * height);
  const hue = [between(next, 0, 255), between(next, 0, 255), between(next, 0, 255)] as const;
  const noise = between(next, 8, 48);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    raw[row] = 0;
    for (let x = 0; x < width; x++) {
      const fx = width > 1 ? x / (width - 1) : 0;
      const fy = height > 1 ? y / (height - 1) : 0;
      const base = [fx * 255, fy * 255, (1 - fx * fy) * 255];
      const random = next();
      for (let channel = 0; channel < 3; channel++) {
        const jitter = ((random >>> (channel * 8)) & 0xff) / 255 - 0.5;
        const value = Math.round(base[channel]! * 0.75 + hue[channel]! * 0.25 + jitter * noise);
        raw[row + 1 + x * 3 + channel] = Math.max(0, Math.min(255, value));
      }
    }
  }
  return raw;
}

/**
 * A PNG of exactly `totalBytes` bytes: a gradient-and-noise image as large as fits, then a
 * tEXt "Comment" chunk holding `comment`, padded with spaces to the exact size. The pixel data
 * is deflated without compression (noise barely compresses), so a file's size follows from its
 * dimensions and lands where asked.
 */
function encodePng(totalBytes: number, comment: string, next: () => number): Buffer {
  const iend = pngChunk('IEND', Buffer.alloc(0));
  const commentHead = Buffer.from(`${COMMENT_KEYWORD}\u0000${comment}`, 'latin1');
  const fixed =
    PNG_SIGNATURE.length + (CHUNK_OVERHEAD + 13) + CHUNK_OVERHEAD + iend.length + CHUNK_OVERHEAD + commentHead.length;
  /** Size of an uncompressed zlib stream: header, 5 bytes per stored block, Adler-32. */
  const storedSize = (raw: number): number => 2 + raw + 5 * Math.max(1, Math.ceil(raw / 65535)) + 4;
  const room = totalBytes - fixed;
  if (room < storedSize(4)) {
    throw new RangeError(`a sample PNG needs at least ${fixed + storedSize(4)} bytes, asked for ${totalBytes}`);
  }
  const maxWidth = Math.max(1, Math.floor((room - storedSize(0) - 1) / 3));
  const width = Math.min(between(next, 48, 320), maxWidth);
  const rowBytes = 1 + width * 3;
  let height = Math.max(1, Math.floor((room - storedSize(0)) / rowBytes));
  while (height > 1 && storedSize(height * rowBytes) > room) height--;

  let idat: Buffer;
  for (;;) {
    idat = deflateSync(gradientScanlines(width, height, next), { level: 0 });
    if (idat.length <= room || height === 1) break;
    height--;
  }
  const padding = room - idat.length;
  if (padding < 0) throw new RangeError(`a sample PNG of ${totalBytes} bytes is too small`);
  const commentData = Buffer.concat([commentHead, Buffer.alloc(padding, 0x20)]);
  const png = Buffer.concat([
    PNG_SIGNATURE,
    headerChunk(width, height),
    pngChunk('IDAT', idat),
    pngChunk('tEXt', commentData),
    iend,
  ]);
  if (png.length !== totalBytes) throw new Error(`internal: sample PNG is ${png.length} bytes, expected ${totalBytes}`);
  return png;
}

// ---------------------------------------------------------------------------------------------
// Batches

export interface SampleBatchOptions {
  orders: number;
  filesPerOrder: number;
  /** Same seed, same bytes. 1 when absent. */
  seed?: number;
  /** Size range of each file, in bytes, inclusive. 4 KiB to 64 KiB when absent. */
  minBytes?: number;
  maxBytes?: number;
}

export interface GeneratedFiles {
  files: number;
  bytes: number;
}

/** Demo defaults: 20 orders of 10 images. */
export const DEMO_SAMPLE: Readonly<SampleBatchOptions> = { orders: 20, filesPerOrder: 10 };

const WRITE_CONCURRENCY = 16;

/** Order id of the i-th (0-based) sample order: ORD-000001, ORD-000002, ... */
export function sampleOrderId(orderIndex: number): string {
  return `ORD-${String(orderIndex + 1).padStart(6, '0')}`;
}

/** File name of the i-th (0-based) sample image of an order: page-001.png, ... */
export function sampleFileName(fileIndex: number): string {
  return `page-${String(fileIndex + 1).padStart(3, '0')}.png`;
}

function requireCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min)
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
}

/**
 * Writes `orders` x `filesPerOrder` PNG images to `dir/<orderId>/page-NNN.png`, creating
 * folders as needed and replacing files of the same name. Sizes are spread over
 * [minBytes, maxBytes]; every file differs from every other (its comment names it).
 */
export async function generateSampleBatch(dir: string, opts: SampleBatchOptions): Promise<GeneratedFiles> {
  const { orders, filesPerOrder, seed = 1, minBytes = 4 * 1024, maxBytes = 64 * 1024 } = opts;
  requireCount('orders', orders, 0);
  requireCount('filesPerOrder', filesPerOrder, 0);
  requireCount('minBytes', minBytes, 1);
  requireCount('maxBytes', maxBytes, minBytes);
  const root = path.resolve(dir);
  const orderIds = Array.from({ length: orders }, (_, index) => sampleOrderId(index));
  await Promise.all(orderIds.map((orderId) => fs.mkdir(path.join(root, orderId), { recursive: true })));

  const jobs = orderIds.flatMap((orderId, orderIndex) =>
    Array.from({ length: filesPerOrder }, (_, fileIndex) => ({ orderId, orderIndex, fileIndex })),
  );
  const sizes = await mapWithConcurrency(jobs, WRITE_CONCURRENCY, async ({ orderId, orderIndex, fileIndex }) => {
    const next = seededRandom(fileSeed(seed, orderIndex, fileIndex));
    const fileName = sampleFileName(fileIndex);
    const size = between(next, minBytes, maxBytes);
    const png = encodePng(size, `image-sync sample ${orderId}/${fileName} seed ${seed}`, next);
    await fs.writeFile(path.join(root, orderId, fileName), png);
    return png.length;
  });
  return { files: sizes.length, bytes: sizes.reduce((sum, size) => sum + size, 0) };
}

export interface BlobFilesOptions {
  /** Number of files. */
  count: number;
  /** Size of each file in bytes. */
  size: number;
  /** Files per order folder; 100 when absent. */
  filesPerOrder?: number;
  seed?: number;
}

/**
 * Writes `count` files of `size` arbitrary bytes to `dir/<orderId>/blob-NNNNNN.bin`, 100 per
 * order folder by default. The files share one random body and differ in their first bytes, so
 * each has its own checksum; writing costs little more than the disk.
 */
export async function generateBlobFiles(dir: string, opts: BlobFilesOptions): Promise<GeneratedFiles> {
  const { count, size, filesPerOrder = 100, seed = 1 } = opts;
  requireCount('count', count, 0);
  requireCount('size', size, 0);
  requireCount('filesPerOrder', filesPerOrder, 1);
  const root = path.resolve(dir);
  const next = seededRandom(seed);
  const body = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += 4) {
    const word = next();
    for (let byte = 0; byte < 4 && offset + byte < size; byte++) body[offset + byte] = (word >>> (byte * 8)) & 0xff;
  }
  const orders = Math.ceil(count / filesPerOrder);
  await Promise.all(
    Array.from({ length: orders }, (_, index) => fs.mkdir(path.join(root, sampleOrderId(index)), { recursive: true })),
  );

  const headerBytes = Math.min(16, size);
  const fileIndexes = Array.from({ length: count }, (_, index) => index);
  await mapWithConcurrency(fileIndexes, WRITE_CONCURRENCY * 2, async (fileIndex) => {
    const header = Buffer.alloc(16);
    header.write(
      `#${String(fileIndex).padStart(9, '0')}#${String(seed >>> 0)
        .padStart(5, '0')
        .slice(-5)}`,
      'latin1',
    );
    const orderId = sampleOrderId(Math.floor(fileIndex / filesPerOrder));
    const fileName = `blob-${String(fileIndex + 1).padStart(6, '0')}.bin`;
    await fs.writeFile(
      path.join(root, orderId, fileName),
      Buffer.concat([header.subarray(0, headerBytes), body.subarray(headerBytes)]),
    );
  });
  return { files: count, bytes: count * size };
}
