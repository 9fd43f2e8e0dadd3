/**
 * The SSH connection and SFTP channel an SFTP target's adapter shares between its requests:
 * opened on first use with the server's host key pinned, opened again after it drops; each
 * operation is bounded by the request timeout and its errors mapped to the port's kinds.
 */
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import type { SftpTarget } from '../config/target-kinds';
import { errorText } from '../errors';
import { RecordingSystemError, type RecordingSystemErrorKind } from './port';
import { sftpKind, SFTP_NO_SUCH_FILE } from './sftp-calls';

export type SftpSessionSettings = Pick<
  SftpTarget,
  'host' | 'port' | 'username' | 'privateKey' | 'passphrase' | 'hostKey' | 'root' | 'requestTimeoutMs'
>;

export class SftpSession {
  private session: Promise<{ client: Client; sftp: SFTPWrapper }> | null = null;

  /** `onClose` is told when the connection drops (what was cached about the server is stale). */
  constructor(
    private readonly settings: SftpSessionSettings,
    private readonly onClose: () => void = () => undefined,
  ) {}

  async close(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session) (await session.catch(() => null))?.client.end();
  }

  /** One operation under the request timeout; on a timeout the connection is dropped. */
  async op<T>(name: string, file: string, run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void this.close();
        reject(this.error('timeout', `${name} ${file}: no answer within ${this.settings.requestTimeoutMs} ms`));
      }, this.settings.requestTimeoutMs);
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (err) {
      throw this.mapped(name, file, err);
    } finally {
      clearTimeout(timer);
    }
  }

  mapped(name: string, file: string, err: unknown): RecordingSystemError {
    if (err instanceof RecordingSystemError) return err;
    const code = (err as { code?: unknown }).code;
    if (code === SFTP_NO_SUCH_FILE) return this.error('protocol', `${name} ${file}: no such file`, 404);
    return this.error(sftpKind(err), `${name} ${file}: ${errorText(err)}`);
  }

  error(kind: RecordingSystemErrorKind, message: string, status?: number): RecordingSystemError {
    return new RecordingSystemError(kind, `sftp://${this.settings.host}:${this.settings.port} ${message}`, status);
  }

  /** The shared SFTP channel, connecting (again) when there is none. */
  async sftp(): Promise<SFTPWrapper> {
    this.session ??= this.connect();
    try {
      return (await this.session).sftp;
    } catch (err) {
      this.session = null;
      throw err;
    }
  }

  private connect(): Promise<{ client: Client; sftp: SFTPWrapper }> {
    let session: Promise<{ client: Client; sftp: SFTPWrapper }> | null = null;
    const [keyType, keyData] = this.settings.hostKey.split(' ') as [string, string];
    const pinned = Buffer.from(keyData, 'base64');
    const client = new Client();
    const config: ConnectConfig = {
      host: this.settings.host,
      port: this.settings.port,
      username: this.settings.username,
      privateKey: this.settings.privateKey,
      ...(this.settings.passphrase ? { passphrase: this.settings.passphrase } : {}),
      readyTimeout: this.settings.requestTimeoutMs,
      keepaliveInterval: 10_000,
      algorithms: {
        serverHostKey: (keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType]) as never,
      },
      hostVerifier: (key: Buffer) => key.equals(pinned),
    };
    session = new Promise((resolve, reject) => {
      let ready = false;
      client.once('ready', () => {
        ready = true;
        client.sftp((err, sftp) => {
          if (err) {
            client.end();
            reject(this.mapped('open sftp channel', this.settings.root, err));
          } else resolve({ client, sftp });
        });
      });
      client.on('error', (err) => {
        if (!ready) reject(this.connectError(err));
      });
      client.on('close', () => {
        if (!ready) reject(this.error('network', 'connection closed before it was ready'));
        if (this.session === session) {
          this.session = null;
          this.onClose();
        }
      });
      client.connect(config);
    });
    return session;
  }

  private connectError(err: Error): RecordingSystemError {
    const level = (err as { level?: string }).level;
    if (/verification failed/i.test(err.message)) {
      return this.error('unauthorized', 'the server host key is not the pinned hostKey; refused');
    }
    if (level === 'client-authentication') return this.error('unauthorized', `authentication refused: ${err.message}`);
    if (/timed out/i.test(err.message)) return this.error('timeout', `connect: ${err.message}`);
    return this.error('network', `connect: ${errorText(err)}`);
  }
}
