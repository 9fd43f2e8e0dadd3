/** Source files on the worker's disk: content types, streaming checksums, and checks that they are there. */
import { createHash } from 'node:crypto';
import { createReadStream, stat } from 'node:fs';
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
 * Whether a source file is there: its size and modification time when it is a regular file
 * (symbolic links are followed), else why not ('file not found', 'not a regular file', ...).
 */
export function checkSourceFile(
  sourcePath: string,
): Promise<{ problem: null; size: number; mtimeMs: number } | { problem: string }> {
  // The callback form: a start checks every file of its input, and it costs less CPU per call than fs.promises.
  return new Promise((resolve) => {
    stat(sourcePath, (error, stats) => {
      if (error) resolve({ problem: statProblem(error) });
      else
        resolve(
          stats.isFile()
            ? { problem: null, size: stats.size, mtimeMs: stats.mtimeMs }
            : { problem: 'not a regular file' },
        );
    });
  });
}

/** The error of an item whose source file is not there: field 'path', the order, file and source path in its message. */
export function sourceFileError(line: number, item: SyncItem, problem: string): ManifestError {
  return {
    line,
    field: 'path',
    message: `${problem}: ${item.sourcePath} (order ${quoteValue(item.orderId)}, file ${quoteValue(item.fileName)})`,
  };
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
  const checks = await mapWithConcurrency(items, opts.concurrency ?? 32, (item) => checkSourceFile(item.sourcePath));
  const errors: ManifestError[] = [];
  checks.forEach((check, index) => {
    if (check.problem !== null) errors.push(sourceFileError(opts.lines?.[index] ?? 0, items[index]!, check.problem));
  });
  return errors;
}
