/**
 * The intake API's requests and answers as zod schemas: the server validates with them, and
 * `GET /v1/openapi.json` is generated from them (openapi.ts), so the document cannot drift from
 * what is enforced. Names follow the manifest's rules (src/source/names.ts,
 * src/source/manifest-record.ts): an order id or a file name that could step out of a folder is
 * refused here as it is in a manifest.
 */
import { z } from 'zod';
import { FILE_STATES } from '../../shared';
import { MEDIA_TYPE, SHA256_HEX, TARGET_NAME, TARGET_NAME_RULE } from '../../source/manifest-record';
import { MAX_NAME_BYTES, MAX_PATH_LENGTH, nameProblem } from '../../source/names';

/** Files in one submission, at most: well under what one intake holds waiting (1,000 by default), so a submission can fit. */
export const MAX_FILES_PER_SUBMISSION = 500;
/** A request body larger than this (bytes) is refused with 413 unless the operator sets another limit. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** The largest body limit an operator may set (bytes). */
export const MAX_BODY_BYTES_LIMIT = 64 * 1024 * 1024;
/** Idempotency keys: 1 to 200 printable ASCII characters, no spaces. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
export const IDEMPOTENCY_KEY_RULE = 'must be 1 to 200 printable ASCII characters without spaces';

const text = () => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });

/** An order id or a file name: one path segment, by the manifest's rules. */
const segmentName = (what: string) =>
  text()
    .min(1, { error: 'must not be empty' })
    .max(MAX_NAME_BYTES, { error: `must be at most ${MAX_NAME_BYTES} bytes long` })
    .superRefine((value, ctx) => {
      const problem = nameProblem(value);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe(
      `${what}: one path segment of at most ${MAX_NAME_BYTES} UTF-8 bytes; not "." or "..", no "/", "\\\\", NUL or control characters`,
    );

export const orderIdSchema = segmentName('the order id');

export const intakeFileSchema = z
  .strictObject({
    fileName: segmentName('the name the file gets at the recording system (unique within a submission)'),
    path: text()
      .min(1, { error: 'must not be empty' })
      .max(MAX_PATH_LENGTH, { error: `must be at most ${MAX_PATH_LENGTH} characters long` })
      .describe(
        'where the workers read the file: absolute, or relative to the first source root; it must resolve (symbolic links followed) to a regular file inside one of the source roots',
      ),
    sha256: text()
      .regex(SHA256_HEX, { error: 'must be 64 hex characters' })
      .optional()
      .describe('the sha256 (hex) the file must have; verified at the recording system'),
    size: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be a whole number' })
      .min(0, { error: 'must be 0 or more' })
      .max(Number.MAX_SAFE_INTEGER, { error: 'is too large' })
      .optional()
      .describe('the size in bytes the file must have; checked when the submission is taken'),
    target: text()
      .regex(TARGET_NAME, { error: TARGET_NAME_RULE })
      .optional()
      .describe('the recording-system target (the default target when absent)'),
    contentType: text()
      .regex(MEDIA_TYPE, { error: 'must be a media type such as image/png' })
      .optional()
      .describe("the file's media type (from the file name's extension when absent)"),
  })
  .describe('one file, by reference');

export const submissionBodySchema = z
  .strictObject({
    files: z
      .array(intakeFileSchema, { error: 'must be a list of files' })
      .min(1, { error: 'must list at least one file' })
      .max(MAX_FILES_PER_SUBMISSION, { error: `must list at most ${MAX_FILES_PER_SUBMISSION} files` }),
  })
  .superRefine((body, ctx) => {
    const first = new Map<string, number>();
    body.files.forEach((file, i) => {
      const seen = first.get(file.fileName);
      if (seen === undefined) first.set(file.fileName, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['files', i, 'fileName'],
          message: `duplicate file name (also files[${seen}].fileName)`,
        });
    });
  })
  .describe('the files of one order to deliver');

export type SubmissionBody = z.output<typeof submissionBodySchema>;

export const acceptedSchema = z
  .strictObject({
    submissionId: z.string(),
    orderId: z.string(),
    files: z.number().int().describe('files in the submission'),
    replayed: z
      .boolean()
      .describe('true when this key had already been taken with this body: nothing new is delivered'),
    statusUrl: z.string().describe("the order's status, relative to the server"),
  })
  .describe('the submission is durable: every file will be delivered once');

export const ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'not_found',
  'method_not_allowed',
  'unsupported_media_type',
  'payload_too_large',
  'in_progress',
  'key_reused',
  'saturated',
  'unavailable',
  'stopping',
  'internal',
] as const;
export type IntakeErrorCode = (typeof ERROR_CODES)[number];

export const errorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      field: z.string().optional().describe('the first field refused, e.g. files[0].path or Idempotency-Key'),
      errors: z
        .array(z.strictObject({ field: z.string(), message: z.string() }))
        .optional()
        .describe('every field refused'),
      retryAfterSeconds: z.number().int().optional(),
    }),
  })
  .describe('why the request was refused; nothing was started');

export const fileStatusSchema = z.strictObject({
  fileName: z.string(),
  target: z.string(),
  state: z.enum([...FILE_STATES, 'ACCEPTED']).describe('ACCEPTED: taken, not yet started'),
  interactionId: z.string().nullable().describe('the interaction delivering the file, once one has begun'),
  resends: z.number().int(),
  reason: z.string().optional(),
  updatedAt: z.string(),
});

export const orderStatusSchema = z.strictObject({
  orderId: z.string(),
  files: z.array(fileStatusSchema),
});

export const healthSchema = z.strictObject({ status: z.string() });

/** A zod issue's path in the form the errors name fields: `files[0].path`. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

export interface FieldError {
  field: string;
  message: string;
}

/** The body's problems, one per field, in the order found. */
export function bodyErrors(error: z.ZodError): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ field: fieldName([...issue.path, key]), message: 'unknown field' });
    } else {
      out.push({ field: fieldName(issue.path), message: issue.message });
    }
  }
  return out;
}
