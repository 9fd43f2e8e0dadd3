/** Source files on the worker's disk: content types, streaming checksums, and checks that they are there. */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { errorText } from '../errors';
import type { SyncItem } from '../shared';
import { mapWithConcurrency } from './concurrency';
import { quoteValue } from './names';
import type { ManifestError } from './port';

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
      return `cannot be read (${code ?? errorText(error)})`;
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
