/**
 * Manifests in, validated SyncItems out, as a stream. See docs/manifests.md.
 *
 * A manifest is NDJSON (one object a line) or CSV with a header row, with the fields
 * `orderId, path, fileName?, sha256?, target?, contentType?`; `path` is relative to the
 * manifest's folder. It is read a piece at a time (readManifestEntries), so a manifest of any
 * size is read in the same memory; duplicate files are spotted by a SeenFiles (a file on disk
 * for large inputs). Every problem becomes a ManifestError that names the line (1-based; a CSV
 * header is line 1) and the field (manifest-record.ts validates the fields), so a person can fix
 * the input; nothing here throws for bad content, only for a manifest that cannot be read at all
 * (SourceInputError). Folders are read by scan.ts.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { errorText } from '../errors';
import { detectDelimiter, parseCsv, type CsvDelimiter } from './csv';
import { readFailure } from './input-errors';
import {
  MANIFEST_FIELDS,
  RecordValidator,
  REQUIRED_FIELDS,
  collectEntries,
  seenFilesInMemory,
  type ManifestEntry,
  type ManifestField,
  type SeenFiles,
} from './manifest-record';
import type { ParsedManifest } from './port';

export type ManifestFormat = 'ndjson' | 'csv';

/** CSV lines parsed at once (more when a quoted field spans the boundary). */
const CSV_CHUNK_LINES = 2000;
const READ_CHUNK_BYTES = 256 * 1024;

const stripByteOrderMark = (value: string): string => (value.charCodeAt(0) === 0xfeff ? value.slice(1) : value);
const LINE_BREAK = /\r\n|\r|\n/;

/**
 * Splits a text given in pieces into lines; line breaks are LF, CRLF or CR (a CR at the end of a
 * piece waits for the next one, which may start with its LF). A text ending in a line break ends
 * with an empty line, as `split` gives it.
 */
class LineSplitter {
  private carry = '';
  private first = true;

  push(piece: string): string[] {
    let text = this.carry + (this.first ? stripByteOrderMark(piece) : piece);
    this.first = false;
    const pendingCr = text.endsWith('\r');
    if (pendingCr) text = text.slice(0, -1);
    const lines = text.split(LINE_BREAK);
    this.carry = lines.pop()! + (pendingCr ? '\r' : '');
    return lines;
  }

  end(): string[] {
    return (this.first ? stripByteOrderMark(this.carry) : this.carry).split(LINE_BREAK);
  }
}

/** What a manifest parser needs: where paths resolve from, and where duplicates are spotted. */
export interface ManifestReadOptions {
  format: ManifestFormat;
  /** The manifest's folder; `path` values resolve against it. */
  baseDir: string;
  /** Where duplicate files are spotted; in memory when absent. */
  seen?: SeenFiles;
  /** CSV lines parsed at once (tests make it small to cross many boundaries). */
  csvChunkLines?: number;
}

/**
 * Parses a manifest given a piece at a time: each push returns the entries of the lines it
 * completed, in line order, and end() the rest. Lines are 1-based and count blank lines; in a
 * CSV the header is line 1 and a record is numbered by the line it starts on.
 */
export class ManifestParser {
  private readonly lines = new LineSplitter();
  private readonly parser: NdjsonParser | CsvParser;

  constructor(opts: ManifestReadOptions) {
    const validator = new RecordValidator(path.resolve(opts.baseDir), opts.seen ?? seenFilesInMemory());
    this.parser =
      opts.format === 'ndjson'
        ? new NdjsonParser(validator)
        : new CsvParser(validator, opts.csvChunkLines ?? CSV_CHUNK_LINES);
  }

  push(piece: string): ManifestEntry[] {
    const out: ManifestEntry[] = [];
    this.parser.lines(this.lines.push(piece), out);
    return out;
  }

  end(): ManifestEntry[] {
    const out: ManifestEntry[] = [];
    this.parser.lines(this.lines.end(), out);
    this.parser.end(out);
    return out;
  }
}

class NdjsonParser {
  private line = 0;

  constructor(private readonly validator: RecordValidator) {}

  lines(lines: string[], out: ManifestEntry[]): void {
    for (const content of lines) {
      const line = ++this.line;
      if (content.trim() === '') continue;
      let raw: unknown;
      try {
        raw = JSON.parse(content);
      } catch (error) {
        out.push({ line, error: { line, field: '', message: `invalid JSON: ${errorText(error)}` } });
        continue;
      }
      this.validator.validate(line, raw, out);
    }
  }

  end(): void {}
}

/** Quote characters in a line: an odd count leaves a quoted field open on the next line. */
function quotes(line: string): number {
  let n = 0;
  for (let at = line.indexOf('"'); at !== -1; at = line.indexOf('"', at + 1)) n++;
  return n;
}

/**
 * CSV records, parsed by csv.ts a chunk of lines at a time. A chunk ends only where no quoted
 * field is open (an even count of quotes so far), so a record spanning lines stays whole; a
 * quote left open for many chunks' worth of lines (a malformed file) ends the chunk anyway, so
 * memory stays bounded.
 */
class CsvParser {
  private delimiter: CsvDelimiter | undefined;
  /** undefined: no header yet; null: a bad header, nothing more is read. */
  private columns: ManifestField[] | null | undefined;
  private chunk: string[] = [];
  /** The line number of chunk[0]. */
  private chunkStart = 1;
  /** Whether a quoted field is open at the end of the chunk. */
  private open = false;
  private sawRecord = false;

  constructor(
    private readonly validator: RecordValidator,
    private readonly chunkLines: number,
  ) {}

  lines(lines: string[], out: ManifestEntry[]): void {
    for (const line of lines) {
      this.chunk.push(line);
      if (quotes(line) % 2 === 1) this.open = !this.open;
      if (this.chunk.length >= this.chunkLines && (!this.open || this.chunk.length >= this.chunkLines * 8)) {
        this.parseChunk(out);
      }
    }
  }

  end(out: ManifestEntry[]): void {
    this.parseChunk(out);
    if (!this.sawRecord) {
      out.push({
        line: 1,
        error: { line: 1, field: '', message: `missing the header row (${MANIFEST_FIELDS.join(',')})` },
      });
    }
  }

  private parseChunk(out: ManifestEntry[]): void {
    const chunk = this.chunk;
    const offset = this.chunkStart - 1;
    this.chunk = [];
    this.open = false;
    this.chunkStart += chunk.length;
    if (chunk.length === 0) return;
    const text = chunk.join('\n');
    this.delimiter ??= chunk.some((l) => l.trim() !== '') ? detectDelimiter(text) : undefined;
    if (this.delimiter === undefined) return;
    for (const record of parseCsv(text, { delimiter: this.delimiter })) {
      this.sawRecord = true;
      const line = record.line + offset;
      const error = (field: string, message: string) => out.push({ line, error: { line, field, message } });
      if (this.columns === undefined) {
        if (record.problem !== undefined) {
          error('', `header row: ${record.problem}`);
          this.columns = null;
        } else {
          this.columns = csvColumns(record.fields, error);
        }
        continue;
      }
      const columns = this.columns;
      if (columns === null) return;
      if (record.problem !== undefined) {
        error('', record.problem);
        continue;
      }
      if (record.fields.length !== columns.length) {
        const count = record.fields.length;
        error('', `has ${count} ${count === 1 ? 'field' : 'fields'}, the header has ${columns.length}`);
        continue;
      }
      const raw: Partial<Record<ManifestField, string>> = {};
      columns.forEach((column, index) => {
        const value = record.fields[index]!;
        if (value !== '') raw[column] = value;
      });
      this.validator.validate(line, raw, out);
    }
  }
}

/** The field of each CSV column (names match case-insensitively), or null after reporting. */
function csvColumns(names: string[], error: (field: string, message: string) => void): ManifestField[] | null {
  const byLowerCase = new Map(MANIFEST_FIELDS.map((field) => [field.toLowerCase(), field] as const));
  const columns: ManifestField[] = [];
  let valid = true;
  for (const columnName of names) {
    const field = byLowerCase.get(columnName.toLowerCase());
    if (field === undefined) {
      error(
        columnName,
        columnName === ''
          ? `a column has no name (the columns are ${MANIFEST_FIELDS.join(', ')})`
          : `unknown column (the columns are ${MANIFEST_FIELDS.join(', ')})`,
      );
      valid = false;
    } else if (columns.includes(field)) {
      error(field, 'column appears twice');
      valid = false;
    } else {
      columns.push(field);
    }
  }
  for (const required of REQUIRED_FIELDS) {
    if (!columns.includes(required)) {
      error(required, 'missing required column');
      valid = false;
    }
  }
  return valid ? columns : null;
}

/**
 * Parses a whole manifest text (see ManifestParser); items resolve their `path` against
 * `baseDir` (the manifest's folder). For small inputs and tests: everything is kept in memory.
 */
export function parseManifestText(manifestText: string, opts: Omit<ManifestReadOptions, 'seen'>): ParsedManifest {
  const parser = new ManifestParser(opts);
  const parsed: ParsedManifest = { items: [], errors: [], lines: [] };
  collectEntries(parser.push(manifestText), parsed);
  return collectEntries(parser.end(), parsed);
}

/** The format of a manifest: by extension (.ndjson/.jsonl, .csv), else '{' first means NDJSON. */
export function detectManifestFormat(file: string, manifestText: string): ManifestFormat {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.ndjson' || extension === '.jsonl') return 'ndjson';
  if (extension === '.csv') return 'csv';
  const firstVisible = stripByteOrderMark(manifestText).trimStart().charAt(0);
  return firstVisible === '{' ? 'ndjson' : 'csv';
}

/**
 * Reads a manifest file as a stream: its entries (see ManifestParser), a batch at a time, read a
 * piece of the file at a time. The format comes from `opts.format`, else from the file (see
 * detectManifestFormat). Rejects with a SourceInputError when the file cannot be read.
 */
export async function* manifestEntries(
  file: string,
  opts: { format?: ManifestFormat; seen?: SeenFiles } = {},
): AsyncGenerator<ManifestEntry[]> {
  const manifestPath = path.resolve(file);
  let head: string;
  try {
    const handle = await fs.open(manifestPath, 'r');
    try {
      const buffer = Buffer.alloc(4096);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw readFailure(error, manifestPath, 'manifest');
  }
  const parser = new ManifestParser({
    format: opts.format ?? detectManifestFormat(manifestPath, head),
    baseDir: path.dirname(manifestPath),
    seen: opts.seen,
  });
  const stream = createReadStream(manifestPath, { encoding: 'utf8', highWaterMark: READ_CHUNK_BYTES });
  try {
    for await (const piece of stream as AsyncIterable<string>) {
      const entries = parser.push(piece);
      if (entries.length > 0) yield entries;
    }
  } catch (error) {
    throw readFailure(error, manifestPath, 'manifest');
  } finally {
    stream.destroy();
  }
  yield parser.end();
}

/** Reads and parses a whole manifest file into memory (see manifestEntries): for small inputs and tests. */
export async function readManifest(file: string, opts: { format?: ManifestFormat } = {}): Promise<ParsedManifest> {
  const parsed: ParsedManifest = { items: [], errors: [], lines: [] };
  for await (const batch of manifestEntries(file, opts)) collectEntries(batch, parsed);
  return parsed;
}
