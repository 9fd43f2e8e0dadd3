/**
 * Manifests and folders in, validated SyncItems out. See design.md, "Inputs".
 *
 * A manifest is NDJSON (one object a line) or CSV with a header row, with the fields
 * `orderId, path, fileName?, sha256?, target?, contentType?`; `path` is relative to the
 * manifest's folder. A folder D is read as `D/<orderId>/<file>`. Every problem becomes a
 * ManifestError that names the line (1-based; a CSV header is line 1) and the field, so a
 * person can fix the input; nothing here throws for bad content, only for a manifest or
 * folder that cannot be read at all (SourceInputError).
 */
import type { Dirent } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { SyncItem } from '../shared';
import { mapWithConcurrency } from './concurrency';
import { parseCsv } from './csv';
import { contentTypeFor, hasKnownContentType } from './files';
import { nameProblem, quoteValue, resolveSourcePath } from './names';
import type { ManifestError, ParsedManifest } from './port';

export { readItemsPage, writeNormalizedManifest } from './normalized';

export type ManifestFormat = 'ndjson' | 'csv';

export const MANIFEST_FIELDS = ['orderId', 'path', 'fileName', 'sha256', 'target', 'contentType'] as const;
export type ManifestField = (typeof MANIFEST_FIELDS)[number];
const REQUIRED_FIELDS: readonly ManifestField[] = ['orderId', 'path'];

/** A manifest file or source folder that cannot be read at all. */
export class SourceInputError extends Error {
  constructor(
    message: string,
    readonly code: 'NOT_FOUND' | 'NOT_A_FILE' | 'NOT_A_FOLDER' | 'UNREADABLE',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SourceInputError';
  }
}

// ---------------------------------------------------------------------------------------------
// One record's fields

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MEDIA_TYPE_TOKEN = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+'-]{0,126}";
const MEDIA_TYPE = new RegExp(`^${MEDIA_TYPE_TOKEN}/${MEDIA_TYPE_TOKEN}$`);

const text = () => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });

const name = () =>
  text().superRefine((value, ctx) => {
    const problem = nameProblem(value);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The schema of one manifest record. `path` comes out resolved against `baseDir`; absent
 * optional fields may also be given as null.
 */
function recordSchema(baseDir: string) {
  return z.strictObject({
    orderId: name(),
    path: text().transform((value, ctx) => {
      const resolved = resolveSourcePath(baseDir, value);
      if (resolved.ok) return resolved.sourcePath;
      ctx.addIssue({ code: 'custom', message: resolved.problem });
      return z.NEVER;
    }),
    fileName: name().nullish(),
    sha256: text()
      .regex(SHA256_HEX, { error: 'must be 64 hex characters' })
      .transform((value) => value.toLowerCase())
      .nullish(),
    target: text()
      .regex(TARGET_NAME, {
        error: 'must be a name of at most 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
      })
      .nullish(),
    contentType: text().regex(MEDIA_TYPE, { error: 'must be a media type such as image/png' }).nullish(),
  });
}

type ManifestRecord = z.output<ReturnType<typeof recordSchema>>;

/** Collects the items and errors of one manifest, in line order, and spots duplicate files. */
class ManifestBuilder {
  private readonly items: SyncItem[] = [];
  private readonly lines: number[] = [];
  private readonly errors: ManifestError[] = [];
  private readonly firstLineOfFile = new Map<string, number>();
  private readonly schema: ReturnType<typeof recordSchema>;

  constructor(baseDir: string) {
    this.schema = recordSchema(baseDir);
  }

  error(line: number, field: string, message: string): void {
    this.errors.push({ line, field, message });
  }

  /** Validates one record (an object of field values as written) and keeps it when valid. */
  addRecord(line: number, raw: unknown): void {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.error(line, '', 'must be a JSON object');
      return;
    }
    const result = this.schema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys)
            this.error(line, key, `unknown field (the fields are ${MANIFEST_FIELDS.join(', ')})`);
        } else {
          this.error(line, issue.path.length > 0 ? String(issue.path[0]) : '', issue.message);
        }
      }
      return;
    }
    const item = this.toItem(line, result.data);
    if (item === null) return;
    const key = `${item.orderId}\u0000${item.fileName}`;
    const firstLine = this.firstLineOfFile.get(key);
    if (firstLine !== undefined) {
      this.error(
        line,
        'fileName',
        `duplicate file ${quoteValue(item.fileName)} of order ${quoteValue(item.orderId)} (first on line ${firstLine})`,
      );
      return;
    }
    this.firstLineOfFile.set(key, line);
    this.items.push(item);
    this.lines.push(line);
  }

  private toItem(line: number, record: ManifestRecord): SyncItem | null {
    const sourcePath = record.path;
    const sourceName = path.basename(sourcePath);
    const fileName = record.fileName ?? sourceName;
    if (record.fileName == null) {
      const problem = nameProblem(fileName);
      if (problem !== null) {
        this.error(line, 'fileName', `the file name taken from path ${problem}`);
        return null;
      }
    }
    const contentType =
      record.contentType ?? (hasKnownContentType(fileName) ? contentTypeFor(fileName) : contentTypeFor(sourceName));
    const item: SyncItem = { orderId: record.orderId, fileName, sourcePath };
    if (record.sha256 != null) item.sha256 = record.sha256;
    if (record.target != null) item.target = record.target;
    item.contentType = contentType;
    return item;
  }

  result(): ParsedManifest {
    return { items: this.items, errors: this.errors, lines: this.lines };
  }
}

// ---------------------------------------------------------------------------------------------
// Manifest text

const stripByteOrderMark = (value: string): string => (value.charCodeAt(0) === 0xfeff ? value.slice(1) : value);

/**
 * Parses a manifest's text. Items resolve their `path` against `baseDir` (the manifest's
 * folder). Lines are 1-based and count blank lines; in a CSV the header is line 1 and a record
 * is numbered by the line it starts on.
 */
export function parseManifestText(
  manifestText: string,
  opts: { format: ManifestFormat; baseDir: string },
): ParsedManifest {
  const builder = new ManifestBuilder(path.resolve(opts.baseDir));
  const body = stripByteOrderMark(manifestText);
  if (opts.format === 'ndjson') parseNdjson(body, builder);
  else parseCsvManifest(body, builder);
  return builder.result();
}

function parseNdjson(body: string, builder: ManifestBuilder): void {
  const lines = body.split(/\r\n|\r|\n/);
  lines.forEach((content, index) => {
    if (content.trim() === '') return;
    const line = index + 1;
    let raw: unknown;
    try {
      raw = JSON.parse(content);
    } catch (error) {
      builder.error(line, '', `invalid JSON: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    builder.addRecord(line, raw);
  });
}

function parseCsvManifest(body: string, builder: ManifestBuilder): void {
  const [header, ...records] = parseCsv(body);
  if (header === undefined) {
    builder.error(1, '', `missing the header row (${MANIFEST_FIELDS.join(',')})`);
    return;
  }
  if (header.problem !== undefined) {
    builder.error(header.line, '', `header row: ${header.problem}`);
    return;
  }
  const columns = csvColumns(header.line, header.fields, builder);
  if (columns === null) return;
  for (const record of records) {
    if (record.problem !== undefined) {
      builder.error(record.line, '', record.problem);
      continue;
    }
    if (record.fields.length !== columns.length) {
      const count = record.fields.length;
      builder.error(
        record.line,
        '',
        `has ${count} ${count === 1 ? 'field' : 'fields'}, the header has ${columns.length}`,
      );
      continue;
    }
    const raw: Partial<Record<ManifestField, string>> = {};
    columns.forEach((column, index) => {
      const value = record.fields[index]!;
      if (value !== '') raw[column] = value;
    });
    builder.addRecord(record.line, raw);
  }
}

/** The field of each CSV column (names match case-insensitively), or null after reporting. */
function csvColumns(line: number, names: string[], builder: ManifestBuilder): ManifestField[] | null {
  const byLowerCase = new Map(MANIFEST_FIELDS.map((field) => [field.toLowerCase(), field] as const));
  const columns: ManifestField[] = [];
  let valid = true;
  for (const columnName of names) {
    const field = byLowerCase.get(columnName.toLowerCase());
    if (field === undefined) {
      builder.error(
        line,
        columnName,
        columnName === ''
          ? `a column has no name (the columns are ${MANIFEST_FIELDS.join(', ')})`
          : `unknown column (the columns are ${MANIFEST_FIELDS.join(', ')})`,
      );
      valid = false;
    } else if (columns.includes(field)) {
      builder.error(line, field, 'column appears twice');
      valid = false;
    } else {
      columns.push(field);
    }
  }
  for (const required of REQUIRED_FIELDS) {
    if (!columns.includes(required)) {
      builder.error(line, required, 'missing required column');
      valid = false;
    }
  }
  return valid ? columns : null;
}

/** The format of a manifest: by extension (.ndjson/.jsonl, .csv), else '{' first means NDJSON. */
export function detectManifestFormat(file: string, manifestText: string): ManifestFormat {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.ndjson' || extension === '.jsonl') return 'ndjson';
  if (extension === '.csv') return 'csv';
  const firstVisible = stripByteOrderMark(manifestText).trimStart().charAt(0);
  return firstVisible === '{' ? 'ndjson' : 'csv';
}

function readFailure(error: unknown, target: string, what: 'manifest' | 'folder'): SourceInputError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new SourceInputError(`${what} not found: ${target}`, 'NOT_FOUND', { cause: error });
  if (code === 'EISDIR') {
    return new SourceInputError(`${target} is a folder, not a manifest file`, 'NOT_A_FILE', { cause: error });
  }
  if (code === 'ENOTDIR') {
    return what === 'folder'
      ? new SourceInputError(`${target} is not a folder`, 'NOT_A_FOLDER', { cause: error })
      : new SourceInputError(`${what} not found: ${target}`, 'NOT_FOUND', { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new SourceInputError(`cannot read ${what} ${target}: ${reason}`, 'UNREADABLE', { cause: error });
}

/**
 * Reads and parses a manifest file; `path` values resolve against the file's folder. The
 * format comes from `opts.format`, else from the file (see detectManifestFormat). Rejects with
 * a SourceInputError when the file cannot be read.
 */
export async function readManifest(file: string, opts: { format?: ManifestFormat } = {}): Promise<ParsedManifest> {
  const manifestPath = path.resolve(file);
  let manifestText: string;
  try {
    manifestText = await fs.readFile(manifestPath, 'utf8');
  } catch (error) {
    throw readFailure(error, manifestPath, 'manifest');
  }
  const format = opts.format ?? detectManifestFormat(manifestPath, manifestText);
  return parseManifestText(manifestText, { format, baseDir: path.dirname(manifestPath) });
}

// ---------------------------------------------------------------------------------------------
// Folders

const SCAN_CONCURRENCY = 16;

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function entryKind(entry: Dirent): string {
  if (entry.isSymbolicLink()) return 'a symbolic link';
  if (entry.isFIFO()) return 'a named pipe';
  if (entry.isSocket()) return 'a socket';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'a device';
  return 'not a regular file';
}

async function readFolder(folder: string): Promise<Dirent[]> {
  const entries = await fs.readdir(folder, { withFileTypes: true });
  return entries.filter((entry) => !entry.name.startsWith('.')).sort((a, b) => byCodeUnits(a.name, b.name));
}

/**
 * Builds items from a folder laid out as `dir/<orderId>/<file>`: one level of order folders,
 * regular files inside them. Names starting with '.' are skipped. Files directly in `dir`,
 * folders inside order folders, symbolic links and other non-regular entries, and names that
 * fail the name rules are reported with line 0, the relative path in the message, and not
 * scanned further. Items come sorted by orderId, then fileName (by UTF-16 code units).
 * Rejects with a SourceInputError when `dir` cannot be read.
 */
export async function scanDirectory(dir: string): Promise<ParsedManifest> {
  const root = path.resolve(dir);
  let entries: Dirent[];
  try {
    entries = await readFolder(root);
  } catch (error) {
    throw readFailure(error, root, 'folder');
  }
  const errors: ManifestError[] = [];
  const orderIds: string[] = [];
  for (const entry of entries) {
    const shown = quoteValue(entry.name, 120);
    if (entry.isDirectory()) {
      const problem = nameProblem(entry.name);
      if (problem === null) orderIds.push(entry.name);
      else errors.push({ line: 0, field: 'orderId', message: `folder ${shown}: an order id ${problem}` });
    } else if (entry.isFile()) {
      errors.push({
        line: 0,
        field: 'path',
        message: `${shown}: a file directly in the folder is not read; put it in an <orderId>/ folder`,
      });
    } else {
      errors.push({ line: 0, field: 'path', message: `${shown}: ${entryKind(entry)}, not read` });
    }
  }

  const perOrder = await mapWithConcurrency(orderIds, SCAN_CONCURRENCY, async (orderId) => {
    const items: SyncItem[] = [];
    const orderErrors: ManifestError[] = [];
    const orderFolder = path.join(root, orderId);
    let files: Dirent[];
    try {
      files = await readFolder(orderFolder);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      orderErrors.push({ line: 0, field: 'path', message: `${quoteValue(`${orderId}/`)}: cannot be read: ${reason}` });
      return { items, errors: orderErrors };
    }
    for (const file of files) {
      const shown = quoteValue(`${orderId}/${file.name}`, 120);
      if (file.isDirectory()) {
        orderErrors.push({
          line: 0,
          field: 'path',
          message: `${shown}: a folder inside an order folder is not read; files go directly in <orderId>/`,
        });
      } else if (!file.isFile()) {
        orderErrors.push({ line: 0, field: 'path', message: `${shown}: ${entryKind(file)}, not read` });
      } else {
        const problem = nameProblem(file.name);
        if (problem === null) {
          items.push({
            orderId,
            fileName: file.name,
            sourcePath: path.join(orderFolder, file.name),
            contentType: contentTypeFor(file.name),
          });
        } else {
          orderErrors.push({ line: 0, field: 'fileName', message: `${shown}: a file name ${problem}` });
        }
      }
    }
    return { items, errors: orderErrors };
  });

  const items = perOrder.flatMap((order) => order.items);
  items.sort((a, b) => byCodeUnits(a.orderId, b.orderId) || byCodeUnits(a.fileName, b.fileName));
  errors.push(...perOrder.flatMap((order) => order.errors));
  return { items, errors, lines: items.map(() => 0) };
}

// ---------------------------------------------------------------------------------------------
// Source files on disk

export interface CheckSourceFilesOptions {
  /** stat calls in flight at once; 32 when absent. */
  concurrency?: number;
  /** `lines[i]` is the manifest line of `items[i]` (ParsedManifest.lines); errors name it. */
  lines?: readonly number[];
}

function statProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'file not found';
    case 'ENOTDIR':
      return 'file not found (a folder on its path is a file)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'symbolic link loop';
    default:
      return `cannot be read (${code ?? (error instanceof Error ? error.message : String(error))})`;
  }
}

/**
 * Checks that every item's sourcePath exists and is a regular file (symbolic links are
 * followed), with bounded parallel stat calls. Each error has field 'path', the manifest line
 * from `opts.lines` (0 when unknown), and the order, file and source path in its message.
 * Errors come in item order.
 */
export async function checkSourceFiles(
  items: readonly SyncItem[],
  opts: CheckSourceFilesOptions = {},
): Promise<ManifestError[]> {
  const problems = await mapWithConcurrency(items, opts.concurrency ?? 32, async (item) => {
    try {
      const stats = await fs.stat(item.sourcePath);
      return stats.isFile() ? null : 'not a regular file';
    } catch (error) {
      return statProblem(error);
    }
  });
  const errors: ManifestError[] = [];
  problems.forEach((problem, index) => {
    if (problem === null) return;
    const item = items[index]!;
    errors.push({
      line: opts.lines?.[index] ?? 0,
      field: 'path',
      message: `${problem}: ${item.sourcePath} (order ${quoteValue(item.orderId)}, file ${quoteValue(item.fileName)})`,
    });
  });
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Reporting

const NON_PRINTING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const escapeNonPrinting = (value: string): string =>
  value.replace(NON_PRINTING, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** One error as one line: `line 7, field sha256: must be 64 hex characters`. */
export function formatManifestError(error: ManifestError): string {
  const where: string[] = [];
  if (error.line > 0) where.push(`line ${error.line}`);
  if (error.field !== '') where.push(`field ${escapeNonPrinting(error.field)}`);
  const message = escapeNonPrinting(error.message);
  return where.length > 0 ? `${where.join(', ')}: ${message}` : message;
}

/** The errors as text, one line each, in the order given. */
export function formatManifestErrors(errors: readonly ManifestError[]): string {
  return errors.map(formatManifestError).join('\n');
}
