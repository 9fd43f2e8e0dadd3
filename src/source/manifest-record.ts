/**
 * One manifest record's fields, validated: the schema of a record and the collector of a
 * manifest's items and errors, which also spots duplicate files. Every problem names the line
 * and the field, so a person can fix the input.
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
export class ManifestBuilder {
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
