/**
 * Problems with the inputs, as a person reads them: a manifest or folder that cannot be read at
 * all (SourceInputError), and manifest errors as one line each.
 */
import { errorText } from '../errors';
import type { ManifestError } from './port';

/** A manifest file or source folder that cannot be read at all. */
export class SourceInputError extends Error {
  constructor(
    message: string,
    readonly code: 'NOT_FOUND' | 'NOT_A_FILE' | 'NOT_A_FOLDER' | 'UNREADABLE',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SourceInputError';
  }
}

/** The SourceInputError of a manifest or folder that could not be read. */
export function readFailure(error: unknown, target: string, what: 'manifest' | 'folder'): SourceInputError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new SourceInputError(`${what} not found: ${target}`, 'NOT_FOUND', { cause: error });
  if (code === 'EISDIR') {
    return new SourceInputError(`${target} is a folder, not a manifest file`, 'NOT_A_FILE', { cause: error });
  }
  if (code === 'ENOTDIR') {
    return what === 'folder'
      ? new SourceInputError(`${target} is not a folder`, 'NOT_A_FOLDER', { cause: error })
      : new SourceInputError(`${what} not found: ${target}`, 'NOT_FOUND', { cause: error });
  }
  return new SourceInputError(`cannot read ${what} ${target}: ${errorText(error)}`, 'UNREADABLE', { cause: error });
}

const NON_PRINTING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const escapeNonPrinting = (value: string): string =>
  value.replace(NON_PRINTING, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** One error as one line: `line 7, field sha256: must be 64 hex characters`. */
export function formatManifestError(error: ManifestError): string {
  const where: string[] = [];
  if (error.line > 0) where.push(`line ${error.line}`);
  if (error.field !== '') where.push(`field ${escapeNonPrinting(error.field)}`);
  const message = escapeNonPrinting(error.message);
  return where.length > 0 ? `${where.join(', ')}: ${message}` : message;
}

/** The errors as text, one line each, in the order given. */
export function formatManifestErrors(errors: readonly ManifestError[]): string {
  return errors.map(formatManifestError).join('\n');
}
