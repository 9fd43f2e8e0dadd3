/**
 * One manifest record's fields, validated: the schema of a record and its validator, which also
 * spots duplicate files. Every problem names the line and the field, so a person can fix the
 * input.
 */
import path from 'node:path';
import { z } from 'zod';
import type { SyncItem } from '../shared';
import { contentTypeFor, hasKnownContentType } from './files';
import { nameProblem, quoteValue, resolveSourcePath } from './names';
import type { ManifestError, ParsedManifest } from './port';

export const MANIFEST_FIELDS = ['orderId', 'path', 'fileName', 'sha256', 'target', 'contentType'] as const;
export type ManifestField = (typeof MANIFEST_FIELDS)[number];
export const REQUIRED_FIELDS: readonly ManifestField[] = ['orderId', 'path'];

/** The field rules a manifest shares with the intake API (src/intake/http/schema.ts). */
export const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MEDIA_TYPE_TOKEN = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+'-]{0,126}";
export const MEDIA_TYPE = new RegExp(`^${MEDIA_TYPE_TOKEN}/${MEDIA_TYPE_TOKEN}$`);
export const TARGET_NAME_RULE =
  'must be a name of at most 64 letters, digits, ".", "_" or "-", starting with a letter or digit';

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
    target: text().regex(TARGET_NAME, { error: TARGET_NAME_RULE }).nullish(),
    contentType: text().regex(MEDIA_TYPE, { error: 'must be a media type such as image/png' }).nullish(),
  });
}

type ManifestRecord = z.output<ReturnType<typeof recordSchema>>;

/** One manifest line's outcome: a valid item, or one of its errors (a line can have several). */
export type ManifestEntry =
  { line: number; item: SyncItem; error?: undefined } | { line: number; error: ManifestError; item?: undefined };

/**
 * Where duplicate files are spotted: remembers each (order, file) with the line it was first
 * seen on. A manifest of any size needs one that does not keep them in memory (spooled-files.ts).
 */
export interface SeenFiles {
  /** The line `item`'s (order, file) was first seen on; undefined when new (it is then remembered at `line`). */
  firstLineOf(item: SyncItem, line: number): number | undefined;
}

/** SeenFiles in memory, for small inputs and tests. */
export function seenFilesInMemory(): SeenFiles {
  const firstLines = new Map<string, number>();
  return {
    firstLineOf(item, line) {
      const key = `${item.orderId}\u0000${item.fileName}`;
      const first = firstLines.get(key);
      if (first === undefined) firstLines.set(key, line);
      return first;
    },
  };
}

/** Validates manifest records one at a time, spotting duplicate files; keeps nothing itself. */
export class RecordValidator {
  private readonly schema: ReturnType<typeof recordSchema>;

  constructor(
    baseDir: string,
    private readonly seen: SeenFiles,
  ) {
    this.schema = recordSchema(baseDir);
  }

  /** Validates one record (an object of field values as written) and appends its entries to `out`. */
  validate(line: number, raw: unknown, out: ManifestEntry[]): void {
    const error = (field: string, message: string) => out.push({ line, error: { line, field, message } });
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      error('', 'must be a JSON object');
      return;
    }
    const result = this.schema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) error(key, `unknown field (the fields are ${MANIFEST_FIELDS.join(', ')})`);
        } else {
          error(issue.path.length > 0 ? String(issue.path[0]) : '', issue.message);
        }
      }
      return;
    }
    const item = toItem(result.data, error);
    if (item === null) return;
    const firstLine = this.seen.firstLineOf(item, line);
    if (firstLine !== undefined) {
      error(
        'fileName',
        `duplicate file ${quoteValue(item.fileName)} of order ${quoteValue(item.orderId)} (first on line ${firstLine})`,
      );
      return;
    }
    out.push({ line, item });
  }
}

function toItem(record: ManifestRecord, error: (field: string, message: string) => void): SyncItem | null {
  const sourcePath = record.path;
  const sourceName = path.basename(sourcePath);
  const fileName = record.fileName ?? sourceName;
  if (record.fileName == null) {
    const problem = nameProblem(fileName);
    if (problem !== null) {
      error('fileName', `the file name taken from path ${problem}`);
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

/** A manifest's entries as items, errors and item lines, in the order given. */
export function collectEntries(entries: Iterable<ManifestEntry>, parsed: ParsedManifest): ParsedManifest {
  parsed.lines ??= [];
  for (const entry of entries) {
    if (entry.error) parsed.errors.push(entry.error);
    else {
      parsed.items.push(entry.item);
      parsed.lines.push(entry.line);
    }
  }
  return parsed;
}
