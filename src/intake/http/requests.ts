/**
 * What the intake server makes of a request before and after the backend: its route, its body
 * (read within the limit), the submitted files (validated by the schemas, targets checked, paths
 * confined to the source roots), and the answer to each outcome of the backend. A refusal is a
 * thrown Refusal, answered by the server as one error document.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { TargetNames } from '../../config/target-names';
import { mapWithConcurrency } from '../../source/concurrency';
import { contentTypeFor, hasKnownContentType } from '../../source/files';
import { nameProblem } from '../../source/names';
import type { IntakeFile, SubmitOutcome } from '../backend';
import { confinePath, type SourceRoot } from './confine';
import type { IntakeRoute } from './metrics';
import { bodyErrors, submissionBodySchema, type FieldError, type IntakeErrorCode, type SubmissionBody } from './schema';

/** A refusal: the status, the error document's code and message, and the fields refused. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: IntakeErrorCode,
    message: string,
    readonly errors: FieldError[] = [],
    readonly headers: Record<string, string> = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const invalid = (errors: FieldError[]): Refusal =>
  new Refusal(
    400,
    'invalid_request',
    errors.map((e) => (e.field ? `${e.field} ${e.message}` : e.message)).join('; '),
    errors,
  );

export interface Route {
  name: IntakeRoute;
  /** Methods the path takes. */
  allow: string[];
  orderId?: string;
  fileName?: string;
}

/** The route of a path, or undefined; throws a 400 for a path that does not decode. */
export function routeOf(pathname: string): Route | undefined {
  const raw = pathname.replace(/\/+$/, '').split('/').slice(1);
  let parts: string[];
  try {
    parts = raw.map((p) => decodeURIComponent(p));
  } catch {
    throw invalid([{ field: 'path', message: 'is not valid percent-encoding' }]);
  }
  if (parts.length === 1 && parts[0] === 'health') return { name: 'health', allow: ['GET', 'HEAD'] };
  if (parts[0] !== 'v1') return undefined;
  if (parts.length === 2 && parts[1] === 'openapi.json') return { name: 'openapi', allow: ['GET', 'HEAD'] };
  if (parts[1] !== 'orders' || parts.length < 3) return undefined;
  const orderId = parts[2]!;
  if (parts.length === 3) return { name: 'order', allow: ['GET', 'HEAD'], orderId };
  if (parts[3] !== 'files') return undefined;
  if (parts.length === 4) return { name: 'submit', allow: ['POST'], orderId };
  if (parts.length === 5) return { name: 'file', allow: ['GET', 'HEAD'], orderId, fileName: parts[4]! };
  return undefined;
}

export function checkOrderId(orderId: string): void {
  const problem = nameProblem(orderId);
  if (problem !== null) throw invalid([{ field: 'orderId', message: problem }]);
}

/** The body, refused with 413 past `max` bytes (announced or read). */
export function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () => new Refusal(413, 'payload_too_large', `the body is larger than ${max} bytes`);
  const announced = Number(req.headers['content-length']);
  if (Number.isFinite(announced) && announced > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!over) reject(err);
    });
  });
}

/** The sha256 of the submission's canonical form: the same files, in any order, hash the same. */
export function canonicalBodySha256(files: readonly IntakeFile[]): string {
  const canonical = [...files]
    .sort((a, b) => (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0))
    .map((f) => [f.fileName, f.sourcePath, f.sha256 ?? null, f.size ?? null, f.target ?? null, f.contentType ?? null]);
  return createHash('sha256').update(JSON.stringify(canonical), 'utf8').digest('hex');
}

/** How many paths are resolved at once for one submission. */
const CONFINE_CONCURRENCY = 16;

/** The validated files of a body: every field checked, every path confined. */
export async function submittedFiles(
  raw: unknown,
  roots: readonly SourceRoot[],
  targets: TargetNames | undefined,
): Promise<IntakeFile[]> {
  const parsed = submissionBodySchema.safeParse(raw);
  if (!parsed.success) throw invalid(bodyErrors(parsed.error));
  const body: SubmissionBody = parsed.data;
  const errors: FieldError[] = [];
  if (targets) {
    body.files.forEach((f, i) => {
      if (f.target !== undefined && !targets.names.includes(f.target))
        errors.push({
          field: `files[${i}].target`,
          message: `unknown target (configured: ${targets.names.join(', ') || 'none'})`,
        });
    });
  }
  const confined = await mapWithConcurrency(body.files, CONFINE_CONCURRENCY, (f) => confinePath(roots, f.path));
  const files: IntakeFile[] = [];
  body.files.forEach((f, i) => {
    const c = confined[i]!;
    if (!c.ok) {
      errors.push({ field: `files[${i}].path`, message: c.problem });
      return;
    }
    if (f.size !== undefined && f.size !== c.size) {
      errors.push({ field: `files[${i}].size`, message: `is ${f.size}, but the file holds ${c.size} bytes` });
      return;
    }
    const sourceName = c.sourcePath.slice(c.sourcePath.lastIndexOf('/') + 1);
    const contentType =
      f.contentType ?? (hasKnownContentType(f.fileName) ? contentTypeFor(f.fileName) : contentTypeFor(sourceName));
    files.push({
      fileName: f.fileName,
      sourcePath: c.sourcePath,
      ...(f.sha256 !== undefined ? { sha256: f.sha256.toLowerCase() } : {}),
      ...(f.size !== undefined ? { size: f.size } : {}),
      // The target named, else the configured default: the backend gets it by name.
      ...(f.target !== undefined || targets ? { target: f.target ?? targets!.defaultTarget } : {}),
      contentType,
    });
  });
  errors.sort((a, b) => a.field.localeCompare(b.field, 'en', { numeric: true }));
  if (errors.length > 0) throw invalid(errors);
  return files;
}

/** The answer to a backend outcome: 202 for accepted, a Refusal thrown otherwise. */
export function outcomeAnswer(
  outcome: SubmitOutcome,
  orderId: string,
  files: number,
): [number, unknown, Record<string, string>] {
  switch (outcome.kind) {
    case 'accepted':
      return [
        202,
        {
          submissionId: outcome.submissionId,
          orderId,
          files,
          replayed: outcome.replayed,
          statusUrl: `/v1/orders/${encodeURIComponent(orderId)}`,
        },
        { Location: `/v1/orders/${encodeURIComponent(orderId)}` },
      ];
    case 'in_progress':
      throw new Refusal(409, 'in_progress', 'this Idempotency-Key is still being taken: retry later with the same key');
    case 'key_reused':
      throw new Refusal(422, 'key_reused', 'this Idempotency-Key was taken before with a different body', [
        { field: 'Idempotency-Key', message: 'was used with a different body' },
      ]);
    case 'saturated': {
      const seconds = Math.max(1, Math.ceil(outcome.retryAfterSeconds));
      throw new Refusal(
        429,
        'saturated',
        `image-sync is saturated (${outcome.reason}): retry after ${seconds} s with the same key`,
        [],
        { 'Retry-After': String(seconds) },
        seconds,
      );
    }
    case 'unavailable':
      throw new Refusal(
        503,
        'unavailable',
        `image-sync cannot take submissions now (${outcome.reason}): retry with the same key`,
        [],
        {
          'Retry-After': '5',
        },
      );
  }
}
