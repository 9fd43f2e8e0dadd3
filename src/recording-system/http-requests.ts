/**
 * The parts of a request, checked before anything is sent: the base URL, the list limit, the
 * file's path, the header values, and the source file a PUT streams.
 */
import fs from 'node:fs/promises';
import type { ReadStream } from 'node:fs';
import { nameProblem } from '../source/names';
import { MAX_LIST_LIMIT, RecordingSystemError } from './port';

export function checkBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`recording system URL is not a valid URL: ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`recording system URL must use http or https, got ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new Error('recording system URL must not carry credentials; use the token');
  }
  return url.href.replace(/\/+$/, '');
}

export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(`list limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${limit}`);
  }
  return limit;
}

/**
 * The contract path of one file. A name that is not a single safe path segment is refused
 * before any request: '.' and '..' in particular would be resolved away by URL parsing and
 * address another resource.
 */
export function filePath(orderId: string, fileName: string): string {
  checkFileNames(orderId, fileName);
  return `/records/${encodeURIComponent(orderId)}/files/${encodeURIComponent(fileName)}`;
}

/** Refuses, before any request, an order id or file name that is not one safe path segment. */
export function checkFileNames(orderId: string, fileName: string): void {
  for (const [field, value] of [
    ['orderId', orderId],
    ['fileName', fileName],
  ] as const) {
    const problem = nameProblem(value);
    if (problem) {
      throw new RecordingSystemError('protocol', `${field} ${JSON.stringify(value)} ${problem}`);
    }
  }
}

/** Printable ASCII: what a header value may hold here. */
const HEADER_VALUE = /^[\x20-\x7e]+$/;

/** Refuses, before any request, header values HTTP cannot carry (empty, non-ASCII, line breaks). */
export function checkHeaders(headers: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_VALUE.test(value)) {
      throw new RecordingSystemError('protocol', `${name} ${JSON.stringify(value)} must be non-empty printable ASCII`);
    }
  }
  return headers;
}

/**
 * Opens the source file for streaming. Problems with the local file (missing, unreadable, not
 * the size the request announces) are thrown as plain errors: they are not the recording
 * system's answer.
 */
export async function openSource(sourcePath: string, expectedSize: number): Promise<ReadStream> {
  const handle = await fs.open(sourcePath, 'r');
  try {
    const { size } = await handle.stat();
    if (size !== expectedSize) {
      throw new Error(`source file ${sourcePath} has ${size} bytes, the request announces ${expectedSize}`);
    }
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle.createReadStream();
}
