/**
 * The recording-system port over SFTP (ssh2), for an SFTP drop such as OpenSSH's internal-sftp.
 * A file lands at `<root>/<orderId>/<fileName>`.
 *
 * - The server's host key is pinned (the target's `hostKey`): a server presenting any other key
 *   is refused before authentication; there is no trust on first use.
 * - put writes to a temporary name under `<root>/.image-sync/tmp/`, fsyncs it
 *   (`fsync@openssh.com`), then renames it with the plain SFTP rename, which never replaces an
 *   existing name. Then it writes the receipt: `<root>/.image-sync/receipts/<orderId>/<fileName>.json`
 *   holds the idempotency key and the sha256, as SFTP has no user metadata.
 * - stat reads the file back and hashes it (SFTP offers no server-side checksum); the receipt's
 *   key counts while the file has the size the receipt records.
 * - remove and removeIfOwn unlink; SFTP has no conditional remove (see docs/destinations/sftp.md
 *   for the race that leaves).
 * - One SSH connection with one SFTP channel is kept open and shared; it is opened again after
 *   it drops.
 */
import { createHash, randomBytes } from 'node:crypto';
import { stat as localStat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import path from 'node:path/posix';
import type { SFTPWrapper, Stats, FileEntryWithStats } from 'ssh2';
import { checkFileNames, checkLimit, openSource } from './http-requests';
import {
  DEFAULT_LIST_LIMIT,
  RecordingSystemError,
  type ListPage,
  type PutRequest,
  type PutResult,
  type Receipt,
  type RecordingSystem,
  type RecordingSystemErrorKind,
  type RequestOptions,
} from './port';
import { sftpCall } from './sftp-calls';
import { SftpSession, type SftpSessionSettings } from './sftp-session';

/** The folder under the root that holds image-sync's own files (receipts, temporary names). */
export const SFTP_OWN_DIR = '.image-sync';

interface SftpReceiptFile {
  idempotencyKey: string;
  sha256: string;
  size: number;
  writtenAt: string;
}

export class SftpRecordingSystem implements RecordingSystem {
  private readonly dirs = new Set<string>();
  private readonly root: string;
  private readonly session: SftpSession;

  constructor(settings: SftpSessionSettings) {
    this.root = settings.root;
    this.session = new SftpSession(settings, () => this.dirs.clear());
  }

  async put(req: PutRequest): Promise<PutResult> {
    const final = this.pathOf(req.orderId, req.fileName);
    const { size } = await localStat(req.sourcePath);
    if (size !== req.size)
      throw new Error(`source file ${req.sourcePath} has ${size} bytes, the request announces ${req.size}`);
    const sftp = await this.sftp();
    const tmpDir = path.join(this.root, SFTP_OWN_DIR, 'tmp');
    await this.ensureDir(sftp, tmpDir);
    await this.ensureDir(sftp, path.dirname(final));
    const temp = path.join(
      tmpDir,
      `${req.idempotencyKey.replace(/[^A-Za-z0-9_-]/g, '_')}-${randomBytes(4).toString('hex')}.part`,
    );
    let renamed = false;
    try {
      if (req.pace) {
        const source = await openSource(req.sourcePath, req.size);
        await this.op('write', temp, () =>
          pipeline(req.pace!(source), sftp.createWriteStream(temp, { flags: 'w', mode: 0o640 })),
        );
      } else {
        await this.op('write', temp, () =>
          sftpCall<void>((cb) => sftp.fastPut(req.sourcePath, temp, { concurrency: 16, chunkSize: 32_768 }, cb)),
        );
      }
      req.signal?.throwIfAborted();
      await this.fsync(sftp, temp);
      try {
        await this.op('rename', final, () => sftpCall<void>((cb) => sftp.rename(temp, final, cb)));
        renamed = true;
      } catch (err) {
        // The plain rename refuses an existing name: someone holds the file already.
        const held = await this.stat(req.orderId, req.fileName, { signal: req.signal });
        if (!held) throw err;
        if (held.idempotencyKey === req.idempotencyKey && held.sha256 === req.sha256) {
          return { outcome: 'already-stored', httpStatus: 200 };
        }
        throw this.error('conflict', `rename onto ${final}: the drop holds this file with other content`, 409);
      }
      await this.writeReceipt(sftp, req.orderId, req.fileName, {
        idempotencyKey: req.idempotencyKey,
        sha256: req.sha256,
        size: req.size,
        writtenAt: new Date().toISOString(),
      });
      return { outcome: 'stored', httpStatus: 201 };
    } finally {
      if (!renamed) await sftpCall<void>((cb) => sftp.unlink(temp, cb)).catch(() => undefined);
    }
  }

  async stat(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<Receipt | null> {
    const file = this.pathOf(orderId, fileName);
    const sftp = await this.sftp();
    opts.signal?.throwIfAborted();
    let attrs;
    try {
      attrs = await this.op('stat', file, () => sftpCall<Stats>((cb) => sftp.stat(file, cb)));
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 404) return null;
      throw err;
    }
    if (!attrs.isFile()) throw this.error('protocol', `${file} is not a regular file`);
    let sha256: string;
    try {
      sha256 = await this.op('read', file, async () => {
        const hash = createHash('sha256');
        await pipeline(sftp.createReadStream(file), hash);
        return hash.digest('hex');
      });
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 404) return null;
      throw err;
    }
    // The receipt names who wrote the file while the file keeps the size it was written with:
    // altered bytes then fail the checksum rule as this writer's copy, which a resend replaces.
    const receipt = await this.readReceipt(sftp, orderId, fileName);
    const own = receipt && receipt.size === attrs.size;
    return {
      orderId,
      fileName,
      sha256,
      size: attrs.size,
      idempotencyKey: own ? receipt.idempotencyKey : '',
      receivedAt: own && receipt.writtenAt ? receipt.writtenAt : new Date(attrs.mtime * 1000).toISOString(),
    };
  }

  async remove(orderId: string, fileName: string, opts: RequestOptions = {}): Promise<'removed' | 'absent'> {
    const file = this.pathOf(orderId, fileName);
    const sftp = await this.sftp();
    opts.signal?.throwIfAborted();
    let outcome: 'removed' | 'absent' = 'removed';
    try {
      await this.op('unlink', file, () => sftpCall<void>((cb) => sftp.unlink(file, cb)));
    } catch (err) {
      if (!(err instanceof RecordingSystemError && err.httpStatus === 404)) throw err;
      outcome = 'absent';
    }
    const receipt = this.receiptPath(orderId, fileName);
    await sftpCall<void>((cb) => sftp.unlink(receipt, cb)).catch(() => undefined);
    return outcome;
  }

  /**
   * Removes the file only when its receipt names `idempotencyKey`. SFTP has no conditional
   * remove: a file replaced between the look and the unlink would be removed (documented).
   */
  async removeIfOwn(
    orderId: string,
    fileName: string,
    idempotencyKey: string,
    opts: RequestOptions = {},
  ): Promise<'removed' | 'absent' | 'other'> {
    const held = await this.stat(orderId, fileName, opts);
    if (!held) return 'absent';
    if (held.idempotencyKey !== idempotencyKey) return 'other';
    return this.remove(orderId, fileName, opts);
  }

  /**
   * Pages through `<root>/<orderId>/<fileName>` in name order; the cursor is the last
   * `orderId/fileName` a page held. Each file is read back and hashed.
   */
  async list(opts: { cursor?: string | null; limit?: number } & RequestOptions = {}): Promise<ListPage> {
    const limit = opts.limit === undefined ? DEFAULT_LIST_LIMIT : checkLimit(opts.limit);
    const sftp = await this.sftp();
    const after = opts.cursor ?? '';
    const names: [string, string][] = [];
    const orders = (await this.readdir(sftp, this.root))
      .filter((e) => e.attrs.isDirectory() && e.filename !== SFTP_OWN_DIR)
      .map((e) => e.filename)
      .sort();
    for (const orderId of orders) {
      if (names.length > limit) break;
      if (after && orderId < after.split('/')[0]!) continue;
      const files = (await this.readdir(sftp, path.join(this.root, orderId)))
        .filter((e) => e.attrs.isFile())
        .map((e) => e.filename)
        .sort();
      for (const fileName of files) {
        if (`${orderId}/${fileName}` > after || !after) names.push([orderId, fileName]);
        if (names.length > limit) break;
      }
    }
    const page = names.slice(0, limit);
    const files: Receipt[] = [];
    for (const [orderId, fileName] of page) {
      opts.signal?.throwIfAborted();
      const receipt = await this.stat(orderId, fileName, opts);
      if (receipt) files.push(receipt);
    }
    const last = page[page.length - 1];
    return { files, nextCursor: names.length > limit && last ? `${last[0]}/${last[1]}` : null };
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  private sftp(): Promise<SFTPWrapper> {
    return this.session.sftp();
  }

  private op<T>(name: string, file: string, run: () => Promise<T>): Promise<T> {
    return this.session.op(name, file, run);
  }

  private mapped(name: string, file: string, err: unknown): RecordingSystemError {
    return this.session.mapped(name, file, err);
  }

  private error(kind: RecordingSystemErrorKind, message: string, status?: number): RecordingSystemError {
    return this.session.error(kind, message, status);
  }

  private pathOf(orderId: string, fileName: string): string {
    checkFileNames(orderId, fileName);
    if (orderId === SFTP_OWN_DIR) throw this.error('protocol', `orderId ${SFTP_OWN_DIR} is reserved on SFTP targets`);
    return path.join(this.root, orderId, fileName);
  }

  private receiptPath(orderId: string, fileName: string): string {
    return path.join(this.root, SFTP_OWN_DIR, 'receipts', orderId, `${fileName}.json`);
  }

  private async readReceipt(sftp: SFTPWrapper, orderId: string, fileName: string): Promise<SftpReceiptFile | null> {
    const file = this.receiptPath(orderId, fileName);
    try {
      const text = await this.op('read', file, () => sftpCall<Buffer>((cb) => sftp.readFile(file, cb)));
      const data = JSON.parse(text.toString('utf8')) as Partial<SftpReceiptFile>;
      return typeof data.idempotencyKey === 'string' && typeof data.sha256 === 'string' && typeof data.size === 'number'
        ? ({ writtenAt: '', ...data } as SftpReceiptFile)
        : null;
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 404) return null;
      if (err instanceof SyntaxError) return null;
      throw err;
    }
  }

  /** Writes the receipt under a temporary name, then renames it over any earlier one. */
  private async writeReceipt(sftp: SFTPWrapper, orderId: string, fileName: string, body: SftpReceiptFile) {
    const file = this.receiptPath(orderId, fileName);
    await this.ensureDir(sftp, path.dirname(file));
    const temp = `${file}.${randomBytes(4).toString('hex')}.part`;
    await this.op('write', file, () => sftpCall<void>((cb) => sftp.writeFile(temp, JSON.stringify(body), cb)));
    await this.op('rename', file, () => sftpCall<void>((cb) => sftp.ext_openssh_rename(temp, file, cb)));
  }

  private async fsync(sftp: SFTPWrapper, file: string): Promise<void> {
    await this.op('fsync', file, async () => {
      const handle = await sftpCall<Buffer>((cb) => sftp.open(file, 'r+', cb));
      try {
        await sftpCall<unknown>((cb) => sftp.ext_openssh_fsync(handle, cb));
      } finally {
        await sftpCall<void>((cb) => sftp.close(handle, cb)).catch(() => undefined);
      }
    });
  }

  private async ensureDir(sftp: SFTPWrapper, dir: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    const parts = dir.split('/').filter(Boolean);
    let current = '';
    for (const part of parts) {
      current += `/${part}`;
      if (this.dirs.has(current) || !current.startsWith(this.root)) continue;
      await sftpCall<void>((cb) => sftp.mkdir(current, cb)).catch(async (err: unknown) => {
        // Refused because it exists (a race with another writer is fine); anything else is a fault.
        const attrs = await sftpCall<Stats>((cb) => sftp.stat(current, cb)).catch(() => null);
        if (!attrs?.isDirectory()) throw this.mapped('mkdir', current, err);
      });
      this.dirs.add(current);
    }
  }

  private async readdir(sftp: SFTPWrapper, dir: string) {
    try {
      return await this.op('readdir', dir, () => sftpCall<FileEntryWithStats[]>((cb) => sftp.readdir(dir, cb)));
    } catch (err) {
      if (err instanceof RecordingSystemError && err.httpStatus === 404) return [];
      throw err;
    }
  }
}
