/** ssh2's callback calls as promises, and the port's error kind for an SFTP failure. */
import type { RecordingSystemErrorKind } from './port';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) ssh2 puts in an error's `code`. */
export const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_FAILURE = 4;

export function sftpCall<T>(start: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value)));
  });
}

export function sftpKind(err: unknown): RecordingSystemErrorKind {
  const code = (err as { code?: unknown }).code;
  if (code === SFTP_PERMISSION_DENIED) return 'unauthorized';
  // A generic failure (disk full, a server-side I/O error) may pass.
  if (code === SFTP_FAILURE) return 'unavailable';
  if (typeof code === 'number') return 'protocol';
  // No SFTP status: the channel or the connection went away.
  return 'network';
}
