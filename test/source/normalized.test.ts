import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncItem } from '../../src/shared';
import { INDEX_STRIDE, pageIndexPath, readItemsPage, writeNormalizedManifest } from '../../src/source/normalized';

const itemAt = (index: number): SyncItem => ({
  orderId: `ORD-${String(Math.floor(index / 10)).padStart(6, '0')}`,
  fileName: `page-${index}.png`,
  sourcePath: `/images/${index}.png`,
  ...(index % 3 === 0 ? { sha256: 'a'.repeat(64) } : {}),
  ...(index % 5 === 0 ? { target: 'archive' } : {}),
  contentType: 'image/png',
});

describe('normalised manifest', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'image-sync-normalized-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips items, one JSON object a line, without stray fields', async () => {
    const file = path.join(dir, 'nested', 'folder', 'items.ndjson');
    const items: SyncItem[] = [
      { orderId: 'A', fileName: 'a "quoted", name.png', sourcePath: '/x/a.png' },
      {
        orderId: 'B',
        fileName: 'b.tif',
        sourcePath: '/x/b.tif',
        sha256: 'f'.repeat(64),
        target: 't1',
        contentType: 'image/tiff',
      },
      { orderId: 'C\u00dc', fileName: 'c.png', sourcePath: '/x/c.png', extra: 'dropped' } as SyncItem,
    ];
    await writeNormalizedManifest(items, file);
    const text = await readFile(file, 'utf8');
    expect(text.split('\n')).toHaveLength(4);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('dropped');
    const expected = items.map(({ orderId, fileName, sourcePath, sha256, target, contentType }) =>
      JSON.parse(JSON.stringify({ orderId, fileName, sourcePath, sha256, target, contentType })),
    );
    expect(await readItemsPage(file, 0, 10)).toEqual(expected);
  });

  it('writes an empty manifest that reads as no items', async () => {
    const file = path.join(dir, 'empty.ndjson');
    await writeNormalizedManifest([], file);
    expect(await readFile(file, 'utf8')).toBe('');
    expect(await readItemsPage(file, 0, 100)).toEqual([]);
  });

  describe('paging over many items', () => {
    const total = 2 * INDEX_STRIDE + 345;
    const items = Array.from({ length: total }, (_, index) => itemAt(index));
    let file: string;
    beforeAll(async () => {
      file = path.join(dir, 'many.ndjson');
      await writeNormalizedManifest(items, file);
    });

    it.each([
      [0, 10],
      [995, 10],
      [INDEX_STRIDE, 1],
      [INDEX_STRIDE - 1, 2],
      [1500, 700],
      [total - 5, 100],
      [total - 1, 1],
    ])('reads offset %i, limit %i', async (offset, limit) => {
      expect(await readItemsPage(file, offset, limit)).toEqual(items.slice(offset, offset + limit));
    });

    it('returns [] at and past the end, and for limit 0', async () => {
      expect(await readItemsPage(file, total, 10)).toEqual([]);
      expect(await readItemsPage(file, total + 10_000, 10)).toEqual([]);
      expect(await readItemsPage(file, 3, 0)).toEqual([]);
    });

    it('pages through everything in order', async () => {
      const seen: SyncItem[] = [];
      for (let offset = 0; ; offset += 400) {
        const page = await readItemsPage(file, offset, 400);
        if (page.length === 0) break;
        seen.push(...page);
      }
      expect(seen).toEqual(items);
    });

    it('writes a page index with one offset per stride', async () => {
      const index = JSON.parse(await readFile(pageIndexPath(file), 'utf8')) as {
        items: number;
        offsets: number[];
        bytes: number;
      };
      expect(index.items).toBe(total);
      expect(index.offsets).toHaveLength(3);
      expect(index.bytes).toBe((await stat(file)).size);
      const text = await readFile(file);
      for (const [entry, offset] of index.offsets.entries()) {
        const line = text.subarray(offset, text.indexOf(0x0a, offset)).toString('utf8');
        expect(JSON.parse(line)).toEqual(items[entry * INDEX_STRIDE]);
      }
    });
  });

  it('reads correctly without an index, and ignores an index that no longer matches the file', async () => {
    const items = Array.from({ length: 2500 }, (_, index) => itemAt(index));
    const file = path.join(dir, 'stale.ndjson');
    await writeNormalizedManifest(items, file);

    // The file rewritten by other means, with one item fewer: the index's size no longer matches.
    const reversed = [...items].reverse().slice(1);
    await writeFile(file, reversed.map((item) => `${JSON.stringify(item)}\n`).join(''));
    expect(await readItemsPage(file, 2100, 3)).toEqual(reversed.slice(2100, 2103));

    // Same bytes, index gone.
    await rm(pageIndexPath(file));
    expect(await readItemsPage(file, 1999, 3)).toEqual(reversed.slice(1999, 2002));
    expect(await readItemsPage(file, 2499, 3)).toEqual([]);

    // An index that does not parse is ignored too.
    await writeFile(pageIndexPath(file), '{not json');
    expect(await readItemsPage(file, 5, 2)).toEqual(reversed.slice(5, 7));
  });

  it('ignores an index whose file was modified since it was written, even at the same size', async () => {
    const items = Array.from({ length: 1200 }, (_, index) => itemAt(index));
    const file = path.join(dir, 'touched.ndjson');
    await writeNormalizedManifest(items, file);
    // Swap the items either side of the first index entry: same size, but item 1000 moves.
    const lines = (await readFile(file, 'utf8')).split('\n');
    expect(lines[999]!.length).not.toBe(lines[1000]!.length);
    [lines[999], lines[1000]] = [lines[1000]!, lines[999]!];
    const sizeBefore = (await stat(file)).size;
    await writeFile(file, lines.join('\n'));
    expect((await stat(file)).size).toBe(sizeBefore);
    await utimes(file, new Date(), new Date(Date.now() + 5_000));
    expect(await readItemsPage(file, 999, 2)).toEqual([items[1000], items[999]]);
    expect(await readItemsPage(file, 1000, 1)).toEqual([items[999]]);
  });

  it('rejects bad arguments, a missing file and a line that is not an item', async () => {
    const file = path.join(dir, 'bad.ndjson');
    await writeFile(file, `${JSON.stringify(itemAt(0))}\n{"orderId":"A"}\nnot json\n`);
    await expect(readItemsPage(file, -1, 1)).rejects.toBeInstanceOf(RangeError);
    await expect(readItemsPage(file, 0, 1.5)).rejects.toBeInstanceOf(RangeError);
    await expect(readItemsPage(path.join(dir, 'missing.ndjson'), 0, 1)).rejects.toThrow(
      /normalised manifest not found/,
    );
    await expect(readItemsPage(file, 0, 1)).resolves.toEqual([itemAt(0)]);
    await expect(readItemsPage(file, 1, 1)).rejects.toThrow(/item 2 is not a sync item/);
    await expect(readItemsPage(file, 2, 1)).rejects.toThrow(/item 3 is not valid JSON/);
  });
});
