/**
 * Rules for the names and paths that come from manifests and folders. A name that could step out
 * of a folder, on the worker's disk or in the recording system's store, is refused here.
 */
import path from 'node:path';

/** Longest order id or file name accepted, in UTF-8 bytes (file systems allow 255). */
export const MAX_NAME_BYTES = 200;
/** Longest manifest `path` accepted, in characters. */
export const MAX_PATH_LENGTH = 4096;

/** C0 controls (including NUL), DEL and C1 controls. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
/** `C:`, `c:\x`, `C:x`: a drive-qualified path. */
const DRIVE_LETTER = /^[A-Za-z]:/;

/** A value as a person reads it in an error message: quoted, escaped, and cut when long. */
export function quoteValue(value: string, max = 60): string {
  const shown = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(shown);
}

/**
 * Why a string cannot be an order id or a file name (one path segment), or null when it can.
 * Refused: '', '.', '..', '/' or '\\', NUL and other control characters, and names longer
 * than MAX_NAME_BYTES.
 */
export function nameProblem(name: string): string | null {
  if (name === '') return 'must not be empty';
  if (name === '.' || name === '..') return `must not be ${quoteValue(name)}`;
  if (name.includes('/') || name.includes('\\')) return 'must not contain "/" or "\\"';
  if (name.includes('\u0000')) return 'must not contain NUL';
  if (CONTROL_CHARACTERS.test(name)) return 'must not contain control characters';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `must be at most ${MAX_NAME_BYTES} bytes long`;
  return null;
}

/** A manifest `path` with '\\' read as a folder separator, so Windows-style paths are checked too. */
export function toPosixPath(relativePath: string): string {
  return relativePath.replace(/\\/g, '/');
}

export type ResolvedSourcePath = { ok: true; sourcePath: string } | { ok: false; problem: string };

/**
 * Resolves a manifest `path` against the manifest's folder. It must be relative (no leading
 * '/' or '\\', no drive letter), free of NUL and control characters, name a file (not the
 * folder itself, no trailing separator), and stay inside `baseDir` once '.' and '..' are
 * applied. The check is lexical: symbolic links are not followed.
 */
export function resolveSourcePath(baseDir: string, relativePath: string): ResolvedSourcePath {
  const fail = (problem: string): ResolvedSourcePath => ({ ok: false, problem });
  if (relativePath === '') return fail('must not be empty');
  if (relativePath.includes('\u0000')) return fail('must not contain NUL');
  if (CONTROL_CHARACTERS.test(relativePath)) return fail('must not contain control characters');
  if (relativePath.length > MAX_PATH_LENGTH) return fail(`must be at most ${MAX_PATH_LENGTH} characters long`);
  const posixPath = toPosixPath(relativePath);
  if (posixPath.startsWith('/') || DRIVE_LETTER.test(posixPath) || path.isAbsolute(relativePath)) {
    return fail('must be relative to the manifest folder (no leading "/" or "\\", no drive letter)');
  }
  if (posixPath.endsWith('/')) return fail('must name a file, not a folder');
  const root = path.resolve(baseDir);
  const sourcePath = path.resolve(root, ...posixPath.split('/'));
  const inside = path.relative(root, sourcePath);
  if (inside === '') return fail('must name a file, not the manifest folder');
  if (inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
    return fail('must stay inside the manifest folder (".." leads out of it)');
  }
  return { ok: true, sourcePath };
}
