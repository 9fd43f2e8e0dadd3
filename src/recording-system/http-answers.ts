/**
 * Reading the recording system's answers: the bodies the contract promises, the port's error
 * kind for a status, and the short excerpt of an unexpected body that error messages quote.
 */
import { z } from 'zod';
import type { RecordingSystemErrorKind } from './port';

/** How many characters of an unexpected answer's body an error message quotes. */
const BODY_EXCERPT_CHARS = 200;
/** How many bytes of an unexpected answer's body are read to build the excerpt. */
const BODY_EXCERPT_BYTES = 2048;

export const receiptSchema = z.object({
  orderId: z.string(),
  fileName: z.string(),
  sha256: z.string(),
  size: z.number().int().nonnegative(),
  idempotencyKey: z.string(),
  receivedAt: z.string(),
});

export const listPageSchema = z.object({
  files: z.array(receiptSchema),
  nextCursor: z.string().nullable(),
});

/** Maps an HTTP status the request did not expect to the port's error kinds. */
export function kindForStatus(status: number): RecordingSystemErrorKind {
  if (status === 409) return 'conflict';
  if (status === 422) return 'rejected';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status >= 500 && status <= 599) return 'unavailable';
  // Too many requests, or the server gave up waiting for the request: try again later.
  if (status === 429 || status === 408) return 'unavailable';
  return 'protocol';
}

/** The first bytes of an answer's body as one short line; the rest is not read. */
export async function readExcerpt(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  try {
    while (received < BODY_EXCERPT_BYTES) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.byteLength;
    }
  } catch {
    // The excerpt is best effort: a body that cannot be read is left out of the message.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return excerptOf(Buffer.concat(chunks).subarray(0, BODY_EXCERPT_BYTES).toString('utf8'));
}

export function excerptOf(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > BODY_EXCERPT_CHARS ? `${line.slice(0, BODY_EXCERPT_CHARS)}…` : line;
}

/** fetch with `redirect: 'error'` fails this way when the answer is a redirect. */
export function isRedirectRefusal(err: unknown): boolean {
  return err instanceof Error && err.cause instanceof Error && err.cause.message === 'unexpected redirect';
}

/** The most telling part of a fetch failure: undici wraps the socket error as `cause`. */
export function networkCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return err.message;
}

/** The recording system's own words from an error body: its `reason` (or `error`) when JSON. */
export function reasonOf(excerpt: string): string {
  try {
    const body = JSON.parse(excerpt) as { reason?: unknown; error?: unknown };
    if (typeof body.reason === 'string' && body.reason) return body.reason;
    if (typeof body.error === 'string' && body.error) return body.error;
  } catch {
    // Not JSON, or cut short: the excerpt itself says it.
  }
  return excerpt;
}
