import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkSourceFiles } from '../../src/source/files';
import { SourceInputError } from '../../src/source/input-errors';
import { parseManifestText } from '../../src/source/manifest';
import { scanDirectory } from '../../src/source/scan';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'image-sync-scan-'));
});
afterEach(async () => {
  await chmod(root, 0o755).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
});

async function put(relativePath: string, content = 'x'): Promise<void> {
  const target = path.join(root, relativePath);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, content);
}

describe('scanDirectory', () => {
  it('builds one item per file in each order folder, sorted by order then file', async () => {
    await put('ORD-2/b.png');
    await put('ORD-10/z.pdf');
    await put('ORD-2/a.JPEG');
    await put('ORD-1/scan.tif');
    await put('ORD-2/notes.txt');
    const result = await scanDirectory(root);
    expect(result.errors).toEqual([]);
    expect(result.items).toEqual([
      {
        orderId: 'ORD-1',
        fileName: 'scan.tif',
        sourcePath: path.join(root, 'ORD-1', 'scan.tif'),
        contentType: 'image/tiff',
      },
      {
        orderId: 'ORD-10',
        fileName: 'z.pdf',
        sourcePath: path.join(root, 'ORD-10', 'z.pdf'),
        contentType: 'application/pdf',
      },
      {
        orderId: 'ORD-2',
        fileName: 'a.JPEG',
        sourcePath: path.join(root, 'ORD-2', 'a.JPEG'),
        contentType: 'image/jpeg',
      },
      { orderId: 'ORD-2', fileName: 'b.png', sourcePath: path.join(root, 'ORD-2', 'b.png'), contentType: 'image/png' },
      {
        orderId: 'ORD-2',
        fileName: 'notes.txt',
        sourcePath: path.join(root, 'ORD-2', 'notes.txt'),
        contentType: 'application/octet-stream',
      },
    ]);
    expect(result.lines).toEqual([0, 0, 0, 0, 0]);
  });

  it('reports stray files at the top and nested folders with line 0, field path, and the relative path', async () => {
    await put('stray.png');
    await put('ORD-1/ok.png');
    await put('ORD-1/deeper/hidden-away.png');
    await put('ORD-2/x/y/z.png');
    const result = await scanDirectory(root);
    expect(result.items.map((item) => `${item.orderId}/${item.fileName}`)).toEqual(['ORD-1/ok.png']);
    expect(result.errors).toEqual([
      { line: 0, field: 'path', message: expect.stringContaining('"stray.png": a file directly in the folder') },
      { line: 0, field: 'path', message: expect.stringContaining('"ORD-1/deeper": a folder inside an order folder') },
      { line: 0, field: 'path', message: expect.stringContaining('"ORD-2/x": a folder inside an order folder') },
    ]);
  });

  it('skips hidden files and folders', async () => {
    await put('.DS_Store');
    await put('.cache/ORD-9/a.png');
    await put('ORD-1/.thumbs.db');
    await put('ORD-1/a.png');
    const result = await scanDirectory(root);
    expect(result.errors).toEqual([]);
    expect(result.items.map((item) => `${item.orderId}/${item.fileName}`)).toEqual(['ORD-1/a.png']);
  });

  it('reports names that fail the name rules and symbolic links', async () => {
    await put('ORD-1/ok.png');
    await put(`ORD-1/bad\u0001name.png`);
    await put(`ORD\u001b2/a.png`);
    await symlink(path.join(root, 'ORD-1', 'ok.png'), path.join(root, 'ORD-1', 'link.png'));
    const result = await scanDirectory(root);
    expect(result.items.map((item) => item.fileName)).toEqual(['ok.png']);
    expect(result.errors).toEqual([
      { line: 0, field: 'orderId', message: 'folder "ORD\\u001b2": an order id must not contain control characters' },
      {
        line: 0,
        field: 'fileName',
        message: '"ORD-1/bad\\u0001name.png": a file name must not contain control characters',
      },
      { line: 0, field: 'path', message: '"ORD-1/link.png": a symbolic link, not read' },
    ]);
  });

  it('gives an empty result for an empty folder', async () => {
    expect(await scanDirectory(root)).toEqual({ items: [], errors: [], lines: [] });
  });

  it('rejects a missing folder and a file given as a folder', async () => {
    const missing = path.join(root, 'nope');
    await expect(scanDirectory(missing)).rejects.toBeInstanceOf(SourceInputError);
    await expect(scanDirectory(missing)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `folder not found: ${missing}`,
    });
    await put('file.png');
    await expect(scanDirectory(path.join(root, 'file.png'))).rejects.toMatchObject({ code: 'NOT_A_FOLDER' });
  });
});

describe('checkSourceFiles', () => {
  it('finds nothing wrong when every source is a regular file', async () => {
    await put('A/a.png');
    await put('A/b.png');
    const { items } = await scanDirectory(root);
    expect(await checkSourceFiles(items, { concurrency: 1 })).toEqual([]);
  });

  it('reports a missing file and a folder on the manifest line, in item order', async () => {
    await put('present.png');
    await mkdir(path.join(root, 'folder.png'));
    const manifest = [
      JSON.stringify({ orderId: 'A', path: 'present.png' }),
      '',
      JSON.stringify({ orderId: 'A', path: 'missing.png' }),
      JSON.stringify({ orderId: 'B', path: 'folder.png' }),
      JSON.stringify({ orderId: 'C', path: 'present.png/child.png' }),
    ].join('\n');
    const parsed = parseManifestText(manifest, { format: 'ndjson', baseDir: root });
    expect(parsed.errors).toEqual([]);
    const errors = await checkSourceFiles(parsed.items, { lines: parsed.lines, concurrency: 2 });
    expect(errors).toEqual([
      {
        line: 3,
        field: 'path',
        message: `file not found: ${path.join(root, 'missing.png')} (order "A", file "missing.png")`,
      },
      {
        line: 4,
        field: 'path',
        message: `not a regular file: ${path.join(root, 'folder.png')} (order "B", file "folder.png")`,
      },
      { line: 5, field: 'path', message: expect.stringMatching(/^file not found \(a folder on its path is a file\)/) },
    ]);
  });

  it('uses line 0 when lines are not given, and handles many items with bounded concurrency', async () => {
    const items = Array.from({ length: 500 }, (_, index) => ({
      orderId: 'A',
      fileName: `f${index}.png`,
      sourcePath: path.join(root, `f${index}.png`),
    }));
    await Promise.all(items.filter((_, index) => index % 100 !== 7).map((item) => writeFile(item.sourcePath, 'x')));
    const errors = await checkSourceFiles(items, { concurrency: 8 });
    expect(errors.map((error) => [error.line, error.message.split(' (')[0]])).toEqual(
      [7, 107, 207, 307, 407].map((index) => [0, `file not found: ${path.join(root, `f${index}.png`)}`]),
    );
  });

  it('rejects a concurrency that is not a positive integer', async () => {
    await expect(checkSourceFiles([], { concurrency: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});
