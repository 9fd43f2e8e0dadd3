/**
 * Durable commits of a SQLite ledger without stopping the process for each one.
 *
 * better-sqlite3 runs every statement on the calling thread. With `synchronous = FULL`, each
 * commit waits there for the WAL file to reach the disk (an fsync: one to two milliseconds on
 * this project's machines), and for that time the whole worker stands still: every other
 * activity, heartbeat and workflow task. A delivered file commits twice.
 *
 * Instead the ledger's connection commits with `synchronous = NORMAL` (in WAL mode: consistent
 * after a crash, and SQLite itself syncs around checkpoints), and an operation that changed rows
 * returns only once an fsync of the WAL file that began after its commit has completed. That fsync
 * runs off the main thread (libuv's pool), and one fsync serves every commit made before it
 * began: commits that come while one runs share the next. So an operation that returns has its
 * rows on disk, as with FULL, and the process goes on working meanwhile.
 *
 * A failed fsync is final for the process. On Linux the pages it could not write may be dropped
 * or marked clean, so a later fsync that succeeds proves nothing about them, while SQLite (and
 * every read) still sees those rows: an idempotent retry of the write finds them, changes
 * nothing, and would return as if durable. So from the first failed fsync on, every operation of
 * the ledger fails with that failure, and the ledger reports itself lost (Ledger.lost): the
 * worker stops, and its next start opens the file as the disk holds it; the activities whose
 * writes were lost are retried by Temporal, and every ledger write is idempotent.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type Database from 'better-sqlite3';
import { SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import { errorText } from '../errors';

/** The file could not be opened to fsync it (too many open files, say): no fsync ran. */
class NotOpened extends Error {
  constructor(cause: unknown) {
    super('not opened', { cause });
  }
}

/**
 * fsyncs of one file, shared: `flush()` resolves once an fsync that began after the call has
 * completed, so every flush made while one runs is served by the next one. An fsync that fails
 * rejects every flush it was to serve, and every flush after it, with SQLite's code for it
 * (SQLITE_IOERR_FSYNC: the ledger reports itself unavailable, as when SQLite's own sync fails);
 * no fsync runs again (see the module's comment), and `lost` settles with that failure. A file
 * that cannot be opened to fsync it fails the flushes it was to serve alone: no fsync failed.
 */
export class SharedFsync {
  #requested = 0;
  #synced = 0;
  #running: Promise<void> | undefined;
  #handle: Promise<FileHandle> | undefined;
  #failure: Error | undefined;
  #markLost!: (failure: Error) => void;
  readonly #sync: () => Promise<void>;
  /** Settles with the first failed fsync: from then on nothing written to the file is proven durable. */
  readonly lost = new Promise<Error>((resolve) => {
    this.#markLost = resolve;
  });

  /** `sync` replaces the fsync of `path` (tests). */
  constructor(
    private readonly path: string,
    sync?: () => Promise<void>,
  ) {
    this.#sync = sync ?? (() => this.#fsyncFile());
  }

  /** The first failed fsync's error, once one failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  async flush(): Promise<void> {
    const mine = ++this.#requested;
    while (this.#synced < mine) {
      if (this.#failure) throw this.#failure;
      this.#running ??= this.#syncOnce().finally(() => {
        this.#running = undefined;
      });
      await this.#running;
    }
  }

  async #syncOnce(): Promise<void> {
    // Every flush asked for so far came after its commit: this fsync serves them all.
    const serves = this.#requested;
    try {
      await this.#sync();
    } catch (err) {
      // As SQLite reports a failed sync of its own: the ledger counts it unavailable (I/O error).
      const failed = (cause: unknown, more = '') =>
        Object.assign(new Error(`fsync of ${this.path} failed: ${errorText(cause)}${more}`, { cause }), {
          code: 'SQLITE_IOERR_FSYNC',
        });
      // No fsync ran, none failed: the flushes it was to serve fail, the next one tries anew.
      if (err instanceof NotOpened) throw failed(err.cause);
      this.#failure ??= failed(
        err,
        '; writes since the last good fsync may not be on disk and no later fsync can prove them, ' +
          'so this process takes no more work on the ledger: restart it, and it opens the file as the disk holds it',
      );
      this.#markLost(this.#failure);
      throw this.#failure;
    }
    this.#synced = Math.max(this.#synced, serves);
  }

  async #fsyncFile(): Promise<void> {
    this.#handle ??= open(this.path, 'r');
    const handle = await this.#handle.catch((err: unknown) => {
      this.#handle = undefined;
      throw new NotOpened(err);
    });
    await handle.sync();
  }

  async close(): Promise<void> {
    await this.#running?.catch(() => undefined);
    const handle = this.#handle;
    this.#handle = undefined;
    await (await handle?.catch(() => undefined))?.close();
  }
}

/**
 * Kysely's SQLite dialect, with an operation's end held until its changes are on disk (see the
 * module's comment). The connection is released first, so other operations run meanwhile.
 */
export class GroupCommitSqliteDialect extends SqliteDialect {
  constructor(
    private readonly config: SqliteDialectConfig,
    private readonly database: Database.Database,
    private readonly fsync: SharedFsync,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    return new GroupCommitDriver(this.config, this.database, this.fsync);
  }
}

/** Kysely's SQLite driver, whose release of its one connection waits for the operation's fsync. */
class GroupCommitDriver extends SqliteDriver {
  /** SQLite's count of rows this connection changed, when the connection was taken. */
  #changesAtAcquire = 0;
  #totalChanges: Database.Statement | undefined;

  constructor(
    config: SqliteDialectConfig,
    private readonly database: Database.Database,
    private readonly fsync: SharedFsync,
  ) {
    super(config);
  }

  #changes(): number {
    this.#totalChanges ??= this.database.prepare('select total_changes()').pluck();
    return this.#totalChanges.get() as number;
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    // After a failed fsync nothing is served, reads neither: what they would see may not be on disk.
    const failure = this.fsync.failure;
    if (failure) throw failure;
    const connection = await super.acquireConnection();
    // SQLite has one connection, held by one operation at a time: the changes made until its
    // release are that operation's own.
    try {
      this.#changesAtAcquire = this.#changes();
    } catch (err) {
      // A closed database, say: the operation fails, and the connection is free for the next.
      await super.releaseConnection();
      throw err;
    }
    return connection;
  }

  override async releaseConnection(): Promise<void> {
    let changed: boolean;
    try {
      changed = this.database.open && this.#changes() !== this.#changesAtAcquire;
    } finally {
      await super.releaseConnection();
    }
    if (changed) await this.fsync.flush();
  }

  override async destroy(): Promise<void> {
    await this.fsync.close();
    await super.destroy();
  }
}
