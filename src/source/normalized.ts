/**
 * The normalised manifest: NDJSON of SyncItem, one item a line, written once before a batch
 * starts and read by the worker in pages.
 *
 * Next to it sits a sidecar index (`<file>.idx`, JSON) with the byte offset of every
 * INDEX_STRIDE-th item, so a page seeks close to its first item instead of reading the file
 * from the start. The index records the data file's size and modification time and is ignored
 * when they no longer match; without a usable index a page is found by streaming from the start.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { errorText } from '../errors';
import type { SyncItem } from '../shared';

/** Items between two entries of the sidecar index. */
export const INDEX_STRIDE = 1000;
const INDEX_VERSION = 1;

interface PageIndex {
  version: number;
  stride: number;
  /** Number of items in the data file. */
  items: number;
  /** Size and modification time of the data file the index describes. */
  bytes: number;
  mtimeMs: number;
  /** offsets[k]: byte offset of item k * stride. */
  offsets: number[];
}

const pageIndexSchema = z.object({
  version: z.literal(INDEX_VERSION),
  stride: z.number().int().positive(),
  items: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  offsets: z.array(z.number().int().nonnegative()),
});

const syncItemSchema = z.object({
  orderId: z.string(),
  fileName: z.string(),
  sourcePath: z.string(),
  sha256: z.string().optional(),
  target: z.string().optional(),
  contentType: z.string().optional(),
});

/** The index file that goes with a normalised manifest. */
export function pageIndexPath(file: string): string {
  return `${file}.idx`;
}

/** The item's own fields only, in a fixed order, without absent ones. */
function itemLine(item: SyncItem): string {
  const out: SyncItem = { orderId: item.orderId, fileName: item.fileName, sourcePath: item.sourcePath };
  if (item.sha256 !== undefined) out.sha256 = item.sha256;
  if (item.target !== undefined) out.target = item.target;
  if (item.contentType !== undefined) out.contentType = item.contentType;
  return `${JSON.stringify(out)}\n`;
}

/**
 * Writes a normalised manifest item by item, and its page index at the end. Both are written to
 * temporary files first and renamed into place by finish(), so a reader never sees half a file;
 * abort() removes them. Memory holds one stride of items and the index's offsets.
 */
export class NormalizedManifestWriter {
  private readonly offsets: number[] = [];
  private pending: string[] = [];
  private bytes = 0;
  private count = 0;
  private done = false;

  private constructor(
    readonly file: string,
    private readonly dataTemp: string,
    private readonly indexTemp: string,
    private readonly handle: fs.FileHandle,
  ) {}

  static async create(file: string): Promise<NormalizedManifestWriter> {
    const target = path.resolve(file);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const suffix = `.tmp-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const dataTemp = `${target}${suffix}`;
    const handle = await fs.open(dataTemp, 'w');
    return new NormalizedManifestWriter(target, dataTemp, `${pageIndexPath(target)}${suffix}`, handle);
  }

  /** Items added so far. */
  get items(): number {
    return this.count;
  }

  /** Adds one item; resolves at once unless a stride of items is due to be written. */
  async add(item: SyncItem): Promise<void> {
    this.pending.push(itemLine(item));
    this.count += 1;
    if (this.pending.length >= INDEX_STRIDE) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    this.offsets.push(this.bytes);
    const buffer = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    await this.handle.write(buffer);
    this.bytes += buffer.length;
  }

  /** Writes what is left and the index, and renames both into place. */
  async finish(): Promise<{ file: string; items: number }> {
    try {
      await this.flush();
      await this.handle.sync();
      await this.handle.close();
      this.done = true;
      const { mtimeMs } = await fs.stat(this.dataTemp);
      const index: PageIndex = {
        version: INDEX_VERSION,
        stride: INDEX_STRIDE,
        items: this.count,
        bytes: this.bytes,
        mtimeMs,
        offsets: this.offsets,
      };
      await fs.writeFile(this.indexTemp, JSON.stringify(index));
      await fs.rename(this.dataTemp, this.file);
      await fs.rename(this.indexTemp, pageIndexPath(this.file));
    } catch (error) {
      await this.abort();
      throw error;
    }
    return { file: this.file, items: this.count };
  }

  /** Drops what was written (nothing is left behind). Safe to call more than once. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.handle.close().catch(() => undefined);
    }
    await Promise.all([fs.rm(this.dataTemp, { force: true }), fs.rm(this.indexTemp, { force: true })]);
  }
}

/** Writes items as a normalised manifest and its page index (see NormalizedManifestWriter). */
export async function writeNormalizedManifest(items: readonly SyncItem[], file: string): Promise<void> {
  const writer = await NormalizedManifestWriter.create(file);
  try {
    for (const item of items) await writer.add(item);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.finish();
}

/** Removes a normalised manifest and its page index, when they are there. */
export async function removeNormalizedManifest(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.rm(pageIndexPath(file), { force: true });
}

/** The page index of a data file, or null when it is missing, unreadable or out of date. */
async function loadPageIndex(file: string, bytes: number, mtimeMs: number): Promise<PageIndex | null> {
  let raw: string;
  try {
    raw = await fs.readFile(pageIndexPath(file), 'utf8');
  } catch {
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  const result = pageIndexSchema.safeParse(parsed);
  if (!result.success) return null;
  const index = result.data;
  if (index.bytes !== bytes || index.mtimeMs !== mtimeMs) return null;
  if (index.offsets.length !== Math.ceil(index.items / index.stride)) return null;
  return index;
}

/**
 * Items `offset` .. `offset + limit - 1` (0-based) of a normalised manifest; fewer at the end,
 * [] past it. The file is streamed line by line from the nearest indexed offset, or from the
 * start without an index, and reading stops once the page is full. Blank lines are skipped.
 * Rejects when the file is missing or a line in the way is not a SyncItem.
 */
export async function readItemsPage(file: string, offset: number, limit: number): Promise<SyncItem[]> {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  const source = path.resolve(file);
  let stats: { size: number; mtimeMs: number };
  try {
    stats = await fs.stat(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT' ? `normalised manifest not found: ${source}` : `cannot read ${source}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  if (limit === 0) return [];

  let startByte = 0;
  let firstItem = 0;
  const index = await loadPageIndex(source, stats.size, stats.mtimeMs);
  if (index !== null) {
    if (offset >= index.items) return [];
    const entry = Math.floor(offset / index.stride);
    startByte = index.offsets[entry]!;
    firstItem = entry * index.stride;
  }

  const page: SyncItem[] = [];
  const stream = createReadStream(source, { start: startByte, encoding: 'utf8', highWaterMark: 256 * 1024 });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let itemNumber = firstItem;
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      if (itemNumber >= offset) {
        page.push(parseItemLine(source, itemNumber, line));
        if (page.length >= limit) break;
      }
      itemNumber++;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
  return page;
}

function parseItemLine(file: string, itemNumber: number, line: string): SyncItem {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (error) {
    throw new Error(`${file}: item ${itemNumber + 1} is not valid JSON: ${errorText(error)}`);
  }
  const result = syncItemSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(`${file}: item ${itemNumber + 1} is not a sync item: ${z.prettifyError(result.error)}`);
  }
  return result.data;
}
