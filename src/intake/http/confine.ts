/**
 * The intake's source roots (IMAGE_SYNC_INTAKE_ROOTS): a submitted `path` is taken only when it
 * names a regular file inside one of them, symbolic links followed. The API must never become a
 * way to make a worker read and ship any file the worker can read, so:
 * - a path with a `..` segment is refused outright, before the disk is asked anything;
 * - a path that is not lexically inside a root is refused as "outside the source roots" without
 *   touching the disk either (a caller cannot probe which files exist elsewhere);
 * - what is left is resolved with realpath, and the resolved path must still be inside a root
 *   (a symbolic link pointing out is refused), and be a regular file.
 * The path handed on is the resolved one: the worker reads the file the check saw, not a link
 * that could be pointed elsewhere afterwards.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_PATH_LENGTH } from '../../source/names';

/** A configured root: as given, and resolved (symbolic links followed) at start. */
export interface SourceRoot {
  given: string;
  real: string;
}

/** A root that cannot serve: the CLI exits 2 with its message. */
export class SourceRootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceRootError';
  }
}

/** Resolves the configured roots; each must be an existing folder. */
export async function resolveSourceRoots(dirs: readonly string[]): Promise<SourceRoot[]> {
  if (dirs.length === 0) throw new SourceRootError('no source root is configured (IMAGE_SYNC_INTAKE_ROOTS)');
  const roots: SourceRoot[] = [];
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) throw new SourceRootError(`source root ${dir} is not an absolute path`);
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      throw new SourceRootError(`source root ${dir} does not exist`);
    }
    if (!(await stat(real)).isDirectory()) throw new SourceRootError(`source root ${dir} is not a folder`);
    roots.push({ given: path.resolve(dir), real });
  }
  return roots;
}

export type ConfinedPath = { ok: true; sourcePath: string; size: number } | { ok: false; problem: string };

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Checks one submitted `path` against the roots; see the module's comment for the rules. */
export async function confinePath(roots: readonly SourceRoot[], given: string): Promise<ConfinedPath> {
  const fail = (problem: string): ConfinedPath => ({ ok: false, problem });
  if (given === '') return fail('must not be empty');
  if (given.length > MAX_PATH_LENGTH) return fail(`must be at most ${MAX_PATH_LENGTH} characters long`);
  if (CONTROL_CHARACTERS.test(given)) return fail('must not contain NUL or control characters');
  if (given.split(/[/\\]/).includes('..')) return fail('must not contain ".."');
  if (given.endsWith('/')) return fail('must name a file, not a folder');
  const first = roots[0];
  if (!first) return fail('no source root is configured');
  const absolute = path.isAbsolute(given) ? path.resolve(given) : path.resolve(first.given, given);
  if (!roots.some((r) => inside(r.given, absolute) || inside(r.real, absolute)))
    return fail('is outside the source roots');
  let real: string;
  try {
    real = await realpath(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? 'error'})`);
  }
  if (!roots.some((r) => inside(r.real, real))) return fail('leads outside the source roots (symbolic link)');
  let info;
  try {
    info = await stat(real);
  } catch (err) {
    return fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!info.isFile()) return fail('is not a regular file');
  return { ok: true, sourcePath: real, size: info.size };
}
