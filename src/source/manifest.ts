/**
 * Manifests in, validated SyncItems out. See docs/manifests.md.
 *
 * A manifest is NDJSON (one object a line) or CSV with a header row, with the fields
 * `orderId, path, fileName?, sha256?, target?, contentType?`; `path` is relative to the
 * manifest's folder. Every problem becomes a ManifestError that names the line (1-based; a CSV
 * header is line 1) and the field (manifest-record.ts validates the fields), so a person can fix
 * the input; nothing here throws for bad content, only for a manifest that cannot be read at all
 * (SourceInputError). Folders are read by scan.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errorText } from '../errors';
import { parseCsv } from './csv';
import { readFailure } from './input-errors';
import { MANIFEST_FIELDS, ManifestBuilder, REQUIRED_FIELDS, type ManifestField } from './manifest-record';
import type { ParsedManifest } from './port';

export type ManifestFormat = 'ndjson' | 'csv';

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
      builder.error(line, '', `invalid JSON: ${errorText(error)}`);
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
