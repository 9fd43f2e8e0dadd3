/** Source files on the worker's disk: content types and streaming checksums. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';

/** Content types inferred from a file name's extension (lowercase, with the dot). */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.pdf': 'application/pdf',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The content type of a file, from its extension (case-insensitive); octet-stream when unknown. */
export function contentTypeFor(fileName: string): string {
  const extension = path.extname(fileName).toLowerCase();
  return CONTENT_TYPES[extension] ?? DEFAULT_CONTENT_TYPE;
}

/** Whether a file name's extension maps to a known content type. */
export function hasKnownContentType(fileName: string): boolean {
  return path.extname(fileName).toLowerCase() in CONTENT_TYPES;
}

export interface FileDigest {
  /** Lowercase hex sha256 of the file's bytes. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * The sha256 and size of a file, read as a stream so memory stays flat for any file size.
 * Rejects with the signal's reason when the signal aborts, and with the file system's error
 * (ENOENT, EISDIR, ...) when the file cannot be read.
 */
export async function sha256File(filePath: string, signal?: AbortSignal): Promise<FileDigest> {
  signal?.throwIfAborted();
  const hash = createHash('sha256');
  let size = 0;
  const stream = createReadStream(filePath, { highWaterMark: READ_CHUNK_BYTES, signal });
  try {
    for await (const chunk of stream) {
      const bytes = chunk as Buffer;
      hash.update(bytes);
      size += bytes.length;
    }
  } catch (error) {
    // An aborted stream fails with a generic AbortError; surface the caller's own reason.
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    stream.destroy();
  }
  return { sha256: hash.digest('hex'), size };
}
