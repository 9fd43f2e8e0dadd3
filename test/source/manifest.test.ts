import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatManifestErrors, SourceInputError } from '../../src/source/input-errors';
import { detectManifestFormat, parseManifestText, readManifest } from '../../src/source/manifest';
import type { ManifestError } from '../../src/source/port';

const BASE = path.resolve('/data/manifests');
const SHA = 'ab'.repeat(32);

const ndjson = (...records: unknown[]): string =>
  records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record))).join('\n');
const parseNdjson = (text: string) => parseManifestText(text, { format: 'ndjson', baseDir: BASE });
const parseCsv = (text: string) => parseManifestText(text, { format: 'csv', baseDir: BASE });
/** The only error of a parse, which must have exactly one. */
function onlyError(errors: ManifestError[]): ManifestError {
  expect(errors).toHaveLength(1);
  return errors[0]!;
}

describe('parseManifestText, NDJSON', () => {
  it('builds items with defaults: fileName from path, content type from extension, path resolved', () => {
    const result = parseNdjson(
      ndjson(
        { orderId: 'ORD-1', path: 'ORD-1/scan.JPG' },
        { orderId: 'ORD-1', path: 'in/a.bin', fileName: 'policy.pdf', sha256: SHA.toUpperCase(), target: 'core-2' },
        { orderId: 'ORD-2', path: 'x.dat', contentType: 'image/heic' },
      ),
    );
    expect(result.errors).toEqual([]);
    expect(result.items).toEqual([
      {
        orderId: 'ORD-1',
        fileName: 'scan.JPG',
        sourcePath: path.join(BASE, 'ORD-1', 'scan.JPG'),
        contentType: 'image/jpeg',
      },
      {
        orderId: 'ORD-1',
        fileName: 'policy.pdf',
        sourcePath: path.join(BASE, 'in', 'a.bin'),
        sha256: SHA,
        target: 'core-2',
        contentType: 'application/pdf',
      },
      { orderId: 'ORD-2', fileName: 'x.dat', sourcePath: path.join(BASE, 'x.dat'), contentType: 'image/heic' },
    ]);
    expect(result.lines).toEqual([1, 2, 3]);
  });

  it('ignores blank lines but counts them in line numbers', () => {
    const text = `\n${JSON.stringify({ orderId: 'A', path: 'a.png' })}\n   \n\r\n${JSON.stringify({ orderId: 'A' })}\n\n`;
    const result = parseNdjson(text);
    expect(result.items).toHaveLength(1);
    expect(result.lines).toEqual([2]);
    expect(onlyError(result.errors)).toEqual({ line: 5, field: 'path', message: 'is required' });
  });

  it('accepts CRLF line ends and a byte order mark', () => {
    const text = `\uFEFF${JSON.stringify({ orderId: 'A', path: 'a.png' })}\r\n${JSON.stringify({ orderId: 'B', path: 'b.png' })}\r\n`;
    const result = parseNdjson(text);
    expect(result.errors).toEqual([]);
    expect(result.items.map((item) => item.orderId)).toEqual(['A', 'B']);
  });

  it('reports invalid JSON on its line with field ""', () => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'a.png' }, '{"orderId": "B", path: }'));
    const error = onlyError(result.errors);
    expect(error.line).toBe(2);
    expect(error.field).toBe('');
    expect(error.message).toMatch(/^invalid JSON: /);
    expect(result.items).toHaveLength(1);
  });

  it('reports a line that is JSON but not an object', () => {
    const result = parseNdjson(ndjson('[1,2]', '"text"', 'null'));
    expect(result.errors).toEqual([
      { line: 1, field: '', message: 'must be a JSON object' },
      { line: 2, field: '', message: 'must be a JSON object' },
      { line: 3, field: '', message: 'must be a JSON object' },
    ]);
  });

  it('reports missing orderId and missing path', () => {
    const result = parseNdjson(ndjson({ path: 'a.png' }, { orderId: 'A' }, {}));
    expect(result.items).toEqual([]);
    expect(result.errors).toEqual([
      { line: 1, field: 'orderId', message: 'is required' },
      { line: 2, field: 'path', message: 'is required' },
      { line: 3, field: 'orderId', message: 'is required' },
      { line: 3, field: 'path', message: 'is required' },
    ]);
  });

  it('reports fields of the wrong type and unknown fields', () => {
    const result = parseNdjson(ndjson({ orderId: 7, path: 'a.png', filename: 'x.png' }));
    expect(result.errors).toEqual([
      { line: 1, field: 'orderId', message: 'must be a string' },
      { line: 1, field: 'filename', message: expect.stringMatching(/^unknown field/) },
    ]);
  });

  it('treats null optional fields as absent', () => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'a.png', fileName: null, sha256: null, target: null }));
    expect(result.errors).toEqual([]);
    expect(result.items[0]).toEqual({
      orderId: 'A',
      fileName: 'a.png',
      sourcePath: path.join(BASE, 'a.png'),
      contentType: 'image/png',
    });
  });

  it.each([
    ['too short', 'ab'.repeat(31)],
    ['too long', 'ab'.repeat(33)],
    ['not hex', 'zz'.repeat(32)],
    ['empty', ''],
  ])('rejects a sha256 that is %s', (_case, sha256) => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'a.png', sha256 }));
    expect(onlyError(result.errors)).toEqual({ line: 1, field: 'sha256', message: 'must be 64 hex characters' });
    expect(result.items).toEqual([]);
  });

  it('normalises sha256 to lowercase', () => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'a.png', sha256: 'AbCdEf'.repeat(10) + 'ABCD' }));
    expect(result.items[0]!.sha256).toBe('abcdef'.repeat(10) + 'abcd');
  });

  it.each([['../x'], ['a/../../b'], ['..'], ['./../x'], ['a\\..\\..\\b']])(
    'rejects path %j that leads out of the manifest folder',
    (escaping) => {
      const error = onlyError(parseNdjson(ndjson({ orderId: 'A', path: escaping })).errors);
      expect(error).toMatchObject({ line: 1, field: 'path' });
      expect(error.message).toMatch(/inside the manifest folder/);
    },
  );

  it.each([['/etc/passwd'], ['\\\\server\\share\\x.png'], ['C:\\images\\x.png'], ['c:x.png'], ['\\x.png']])(
    'rejects absolute or drive-qualified path %j',
    (absolute) => {
      const error = onlyError(parseNdjson(ndjson({ orderId: 'A', path: absolute })).errors);
      expect(error).toMatchObject({ line: 1, field: 'path' });
      expect(error.message).toMatch(/must be relative/);
    },
  );

  it('accepts a path whose ".." stays inside the folder, and names the file by the resolved path', () => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'x/../y/scan.png' }, { orderId: 'B', path: 'x/y/..' }));
    expect(result.errors).toEqual([]);
    expect(result.items.map((item) => [item.fileName, item.sourcePath])).toEqual([
      ['scan.png', path.join(BASE, 'y', 'scan.png')],
      ['x', path.join(BASE, 'x')],
    ]);
  });

  it.each([
    ['the folder itself', '.', /not the manifest folder/],
    ['a folder', 'ORD-1/', /must name a file/],
    ['NUL', 'a\u0000.png', /NUL/],
    ['a control character', 'a\n.png', /control characters/],
    ['DEL', 'a\u007f.png', /control characters/],
    ['empty', '', /must not be empty/],
  ])('rejects a path with %s', (_case, badPath, message) => {
    const error = onlyError(parseNdjson(ndjson({ orderId: 'A', path: badPath })).errors);
    expect(error).toMatchObject({ line: 1, field: 'path' });
    expect(error.message).toMatch(message);
  });

  it.each([
    ['orderId', '..', /must not be "\.\."/],
    ['orderId', '.', /must not be "\."/],
    ['orderId', '', /must not be empty/],
    ['orderId', 'A/B', /must not contain "\/"/],
    ['orderId', 'A\\B', /must not contain "\/" or "\\"/],
    ['orderId', 'A\u0000', /NUL/],
    ['orderId', 'A\tB', /control characters/],
    ['orderId', 'x'.repeat(201), /at most 200 bytes/],
    ['fileName', '..', /must not be "\.\."/],
    ['fileName', 'dir/evil.png', /must not contain "\/"/],
    ['fileName', '..\\evil.png', /must not contain/],
    ['fileName', 'a\u0000.png', /NUL/],
    ['fileName', 'a\u001b[31m.png', /control characters/],
    ['fileName', 'a\u007f.png', /control characters/],
    ['fileName', 'é'.repeat(101), /at most 200 bytes/],
  ])('rejects %s %j', (field, value, message) => {
    const record = { orderId: 'A', path: 'a.png', [field]: value };
    const error = onlyError(parseNdjson(ndjson(record)).errors);
    expect(error).toMatchObject({ line: 1, field });
    expect(error.message).toMatch(message);
  });

  it('accepts names at the length limit and unusual but harmless characters', () => {
    const result = parseNdjson(
      ndjson(
        { orderId: 'x'.repeat(200), path: 'a.png' },
        { orderId: 'Order 7 (Ü)', path: 'a.png', fileName: '.hidden scan #1.png' },
      ),
    );
    expect(result.errors).toEqual([]);
    expect(result.items).toHaveLength(2);
  });

  it('rejects a bad target and a bad content type', () => {
    const result = parseNdjson(
      ndjson({ orderId: 'A', path: 'a.png', target: '../core' }, { orderId: 'B', path: 'b.png', contentType: 'png' }),
    );
    expect(result.errors).toEqual([
      { line: 1, field: 'target', message: expect.stringMatching(/^must be a name/) },
      { line: 2, field: 'contentType', message: 'must be a media type such as image/png' },
    ]);
  });

  it('reports a duplicate (orderId, fileName) on the later line, field fileName', () => {
    const result = parseNdjson(
      ndjson(
        { orderId: 'A', path: 'one/scan.png' },
        { orderId: 'B', path: 'one/scan.png' },
        { orderId: 'A', path: 'two/x.bin', fileName: 'scan.png' },
      ),
    );
    expect(result.items.map((item) => item.orderId)).toEqual(['A', 'B']);
    expect(onlyError(result.errors)).toEqual({
      line: 3,
      field: 'fileName',
      message: 'duplicate file "scan.png" of order "A" (first on line 1)',
    });
  });

  it('reports every bad field of a line, each naming line and field', () => {
    const result = parseNdjson(ndjson({ orderId: 'A', path: 'a.png' }, { orderId: '..', path: '/x', sha256: 'no' }));
    expect(result.errors.map((error) => [error.line, error.field])).toEqual([
      [2, 'orderId'],
      [2, 'path'],
      [2, 'sha256'],
    ]);
  });

  it('has nothing to say about empty text', () => {
    expect(parseNdjson('')).toEqual({ items: [], errors: [], lines: [] });
  });
});

describe('parseManifestText, CSV', () => {
  it('reads a header in any order, with optional columns, and numbers the header line 1', () => {
    const text = [
      'sha256,path,orderId,contentType,target,fileName',
      `${SHA},a/b.png,ORD-1,,main,`,
      ',c.tiff,ORD-2,,,c-renamed.tif',
    ].join('\n');
    const result = parseCsv(text);
    expect(result.errors).toEqual([]);
    expect(result.items).toEqual([
      {
        orderId: 'ORD-1',
        fileName: 'b.png',
        sourcePath: path.join(BASE, 'a', 'b.png'),
        sha256: SHA,
        target: 'main',
        contentType: 'image/png',
      },
      { orderId: 'ORD-2', fileName: 'c-renamed.tif', sourcePath: path.join(BASE, 'c.tiff'), contentType: 'image/tiff' },
    ]);
    expect(result.lines).toEqual([2, 3]);
  });

  it('reads quoted fields with commas, escaped quotes and spaces around fields', () => {
    const text =
      'orderId, path, fileName\n"ORD, 1" , "scans/a, b.png", "the ""best"" scan.png"\n  ORD-2  ,  c d.png  ,\n';
    const result = parseCsv(text);
    expect(result.errors).toEqual([]);
    expect(result.items).toEqual([
      {
        orderId: 'ORD, 1',
        fileName: 'the "best" scan.png',
        sourcePath: path.join(BASE, 'scans', 'a, b.png'),
        contentType: 'image/png',
      },
      { orderId: 'ORD-2', fileName: 'c d.png', sourcePath: path.join(BASE, 'c d.png'), contentType: 'image/png' },
    ]);
  });

  it('numbers records by the line they start on, counting blank lines and quoted line breaks', () => {
    const text = 'orderId,path\n\nA,a.png\n"B",b.png\r\nC,"c\nd.png"\nD,../d.png\n';
    const result = parseCsv(text);
    expect(result.lines).toEqual([3, 4]);
    expect(result.errors).toEqual([
      { line: 5, field: 'path', message: 'must not contain control characters' },
      { line: 7, field: 'path', message: expect.stringMatching(/inside the manifest folder/) },
    ]);
  });

  it('reports missing required values on the record line', () => {
    const result = parseCsv('orderId,path,fileName\n,a.png,\nB,,b.png\n"",c.png,\n');
    expect(result.errors).toEqual([
      { line: 2, field: 'orderId', message: 'is required' },
      { line: 3, field: 'path', message: 'is required' },
      { line: 4, field: 'orderId', message: 'is required' },
    ]);
  });

  it('reports an unknown column on line 1 and reads no records', () => {
    const result = parseCsv('orderId,path,colour\nA,a.png,red\n');
    expect(result.items).toEqual([]);
    expect(onlyError(result.errors)).toEqual({
      line: 1,
      field: 'colour',
      message: expect.stringMatching(/^unknown column/),
    });
  });

  it('reports each missing required column on line 1', () => {
    expect(parseCsv('fileName,sha256\nx.png,\n').errors).toEqual([
      { line: 1, field: 'orderId', message: 'missing required column' },
      { line: 1, field: 'path', message: 'missing required column' },
    ]);
    expect(parseCsv('orderId\nA\n').errors).toEqual([{ line: 1, field: 'path', message: 'missing required column' }]);
  });

  it('matches column names case-insensitively and reports a repeated column', () => {
    expect(parseCsv('OrderID,PATH\nA,a.png\n').items).toHaveLength(1);
    expect(onlyError(parseCsv('orderId,path,orderid\nA,a.png,B\n').errors)).toEqual({
      line: 1,
      field: 'orderId',
      message: 'column appears twice',
    });
  });

  it('reports an empty manifest as a missing header', () => {
    expect(onlyError(parseCsv('\n\n').errors)).toMatchObject({
      line: 1,
      field: '',
      message: expect.stringMatching(/header/),
    });
  });

  it('reports records with the wrong number of fields', () => {
    const result = parseCsv('orderId,path\nA,a.png,extra\nB\nC,c.png\n');
    expect(result.items.map((item) => item.orderId)).toEqual(['C']);
    expect(result.errors).toEqual([
      { line: 2, field: '', message: 'has 3 fields, the header has 2' },
      { line: 3, field: '', message: 'has 1 field, the header has 2' },
    ]);
  });

  it('reports malformed quoting', () => {
    const result = parseCsv('orderId,path\n"A"x,a.png\nB,b"c.png\nC,"c.png\n');
    expect(result.errors).toEqual([
      { line: 2, field: '', message: 'unexpected character after a closing quote' },
      { line: 3, field: '', message: expect.stringMatching(/a quote inside an unquoted field/) },
      { line: 4, field: '', message: 'a quoted field is not closed' },
    ]);
  });

  it('keeps reading after a malformed record: the records after a bad quote are read, not swallowed', () => {
    const result = parseCsv('orderId,path\n"A"x,a.png\nB,b.png\nC,"c\nd.png"x\nE,e.png\n');
    expect(result.items.map((item) => item.orderId)).toEqual(['B', 'E']);
    expect(result.lines).toEqual([3, 6]);
    expect(result.errors).toEqual([
      { line: 2, field: '', message: 'unexpected character after a closing quote' },
      { line: 4, field: '', message: 'unexpected character after a closing quote' },
    ]);
  });

  it('drops a byte order mark before the header', () => {
    const result = parseCsv('\ufefforderId,path\r\nA,a.png\r\n');
    expect(result.errors).toEqual([]);
    expect(result.items).toEqual([
      { orderId: 'A', fileName: 'a.png', sourcePath: path.join(BASE, 'a.png'), contentType: 'image/png' },
    ]);
  });

  it('reads ";" as the separator when the header uses it, with quoted fields holding ";" and ","', () => {
    const text =
      '\ufefforderId;path;fileName\n"ORD;1";"a;b.png";\nORD-2;"c,d.png";"the ""e"".png"\nORD-3;x.png;y.png;z\n';
    const result = parseCsv(text);
    expect(result.items).toEqual([
      { orderId: 'ORD;1', fileName: 'a;b.png', sourcePath: path.join(BASE, 'a;b.png'), contentType: 'image/png' },
      {
        orderId: 'ORD-2',
        fileName: 'the "e".png',
        sourcePath: path.join(BASE, 'c,d.png'),
        contentType: 'image/png',
      },
    ]);
    expect(result.errors).toEqual([{ line: 4, field: '', message: 'has 4 fields, the header has 3' }]);
  });

  it('keeps a "," inside an unquoted field of a ";" manifest', () => {
    const result = parseCsv('orderId;path\nA;a,1.png\n');
    expect(result.errors).toEqual([]);
    expect(result.items.map((item) => item.fileName)).toEqual(['a,1.png']);
  });

  it('names the line and field of a bad value in a ";" manifest, counting quoted line breaks', () => {
    const result = parseCsv(`orderId;path;sha256\n"A\nB";a.png;\nC;c.png;${'0'.repeat(63)}\n`);
    expect(result.errors).toEqual([
      { line: 2, field: 'orderId', message: 'must not contain control characters' },
      { line: 4, field: 'sha256', message: 'must be 64 hex characters' },
    ]);
  });

  it('applies the same name rules and duplicate check as NDJSON', () => {
    const result = parseCsv('orderId,path,fileName\n..,a.png,\nA,a.png,a/b.png\nA,x/a.png,\nA,y/a.png,\n');
    expect(result.errors).toEqual([
      { line: 2, field: 'orderId', message: 'must not be ".."' },
      { line: 3, field: 'fileName', message: 'must not contain "/" or "\\"' },
      { line: 5, field: 'fileName', message: 'duplicate file "a.png" of order "A" (first on line 4)' },
    ]);
  });
});

describe('formatManifestErrors', () => {
  it('writes one readable line per error', () => {
    const text = formatManifestErrors([
      { line: 7, field: 'sha256', message: 'must be 64 hex characters' },
      { line: 3, field: '', message: 'invalid JSON: Unexpected token' },
      { line: 0, field: 'path', message: '"stray.png": a file directly in the folder is not read' },
    ]);
    expect(text.split('\n')).toEqual([
      'line 7, field sha256: must be 64 hex characters',
      'line 3: invalid JSON: Unexpected token',
      'field path: "stray.png": a file directly in the folder is not read',
    ]);
  });

  it('keeps each error on one line whatever the message holds', () => {
    const text = formatManifestErrors([{ line: 2, field: 'a\nb', message: 'x\ry\u2028z' }]);
    expect(text).toBe('line 2, field a\\u000ab: x\\u000dy\\u2028z');
  });

  it('formats real parse errors', () => {
    const { errors } = parseCsv(`orderId,path,sha256\nA,a.png,${'0'.repeat(63)}\n`);
    expect(formatManifestErrors(errors)).toBe('line 2, field sha256: must be 64 hex characters');
  });
});

describe('readManifest', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'image-sync-manifest-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads NDJSON by extension and resolves paths against the manifest folder', async () => {
    const file = path.join(dir, 'batch.jsonl');
    await writeFile(file, ndjson({ orderId: 'A', path: 'A/one.png' }));
    const result = await readManifest(file);
    expect(result.errors).toEqual([]);
    expect(result.items[0]!.sourcePath).toBe(path.join(dir, 'A', 'one.png'));
  });

  it('reads CSV by extension, and a forced format wins over the extension', async () => {
    const file = path.join(dir, 'batch.csv');
    await writeFile(file, 'orderId,path\nA,a.png\n');
    expect((await readManifest(file)).items).toHaveLength(1);
    const forced = await readManifest(file, { format: 'ndjson' });
    expect(forced.items).toEqual([]);
    expect(forced.errors[0]).toMatchObject({ line: 1, field: '', message: expect.stringMatching(/^invalid JSON/) });
  });

  it('sniffs the format of a file without a known extension', async () => {
    const jsonFile = path.join(dir, 'list.txt');
    await writeFile(jsonFile, `\n  ${JSON.stringify({ orderId: 'A', path: 'a.png' })}\n`);
    expect((await readManifest(jsonFile)).items).toHaveLength(1);
    const csvFile = path.join(dir, 'list');
    await writeFile(csvFile, 'orderId,path\nA,a.png\n');
    expect((await readManifest(csvFile)).items).toHaveLength(1);
  });

  it('detects formats', () => {
    expect(detectManifestFormat('m.NDJSON', 'orderId,path')).toBe('ndjson');
    expect(detectManifestFormat('m.jsonl', '')).toBe('ndjson');
    expect(detectManifestFormat('m.csv', '{"orderId":"A"}')).toBe('csv');
    expect(detectManifestFormat('m', '\uFEFF \n{"orderId":"A"}')).toBe('ndjson');
    expect(detectManifestFormat('m.txt', 'orderId,path')).toBe('csv');
  });

  it('rejects a missing file with a clear error', async () => {
    const missing = path.join(dir, 'nope.ndjson');
    const failure = readManifest(missing);
    await expect(failure).rejects.toBeInstanceOf(SourceInputError);
    await expect(failure).rejects.toMatchObject({ code: 'NOT_FOUND', message: `manifest not found: ${missing}` });
  });

  it('rejects a folder given as a manifest', async () => {
    await expect(readManifest(dir)).rejects.toMatchObject({
      code: 'NOT_A_FILE',
      message: `${dir} is a folder, not a manifest file`,
    });
  });
});
