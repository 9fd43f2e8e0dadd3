/**
 * WAL checkpoints of a SQLite ledger, run on a thread of their own.
 *
 * SQLite copies its WAL back into the database file (a checkpoint) on the connection whose commit
 * takes the WAL past 1,000 pages, inside that commit. better-sqlite3 runs every statement on the
 * calling thread, so every hundred files or so one commit on the worker's main thread also wrote
 * the changed pages into the database file and synced it: tens of milliseconds (up to 75 ms
 * measured) in which every activity, heartbeat and workflow task of the worker stood still.
 *
 * Instead the ledger's connection makes no checkpoints of its own (`wal_autocheckpoint = 0`), and
 * after every CHECKPOINT_EVERY_COMMITS commits asks a thread with a connection of its own to the
 * same file for a PASSIVE checkpoint: it copies what no reader still needs, without taking the
 * write lock, so the main thread's commits go on meanwhile. The WAL starts over from its beginning
 * once a checkpoint has copied all of it, so it stays about as small as SQLite keeps it itself.
 * When the thread cannot run (it fails to start, or its connection fails), the ledger's connection
 * makes its checkpoints itself again, as SQLite does by default.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** Commits of the ledger's connection between two checkpoints (a delivered file commits twice). */
export const CHECKPOINT_EVERY_COMMITS = 200;

/** SQLite's own default, which the connection goes back to when the thread cannot run. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

/** The checkpoint thread: one connection to the file, a PASSIVE checkpoint per message. */
const THREAD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.betterSqlite3);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true, timeout: workerData.busyTimeoutMs });
} catch (err) {
  parentPort.postMessage({ failed: String((err && err.message) || err) });
}
parentPort.on('message', (msg) => {
  if (msg === 'close') {
    if (db) db.close();
    parentPort.close();
    return;
  }
  if (!db) return;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ done: row });
  } catch (err) {
    parentPort.postMessage({ failed: String((err && err.message) || err) });
  }
});
`;

/** What one checkpoint did: `log` frames in the WAL, `checkpointed` of them copied back. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export class BackgroundCheckpointer {
  #commits = 0;
  #thread: Worker | undefined;
  #inFlight = false;
  #failed = false;
  #closed = false;
  /** Resolves each time a checkpoint ends (tests; the figures of the last one). */
  #waiters: ((result: CheckpointResult | undefined) => void)[] = [];
  /** Checkpoints the thread has run. */
  checkpoints = 0;

  constructor(
    private readonly database: Database.Database,
    private readonly file: string,
    private readonly opts: { everyCommits?: number; busyTimeoutMs: number; onFailure?: (reason: string) => void },
  ) {
    database.pragma('wal_autocheckpoint = 0');
  }

  /** Counts a commit of the ledger's connection; every so many, asks the thread for a checkpoint. */
  committed(): void {
    if (this.#failed || this.#closed) return;
    this.#commits += 1;
    if (this.#inFlight || this.#commits < (this.opts.everyCommits ?? CHECKPOINT_EVERY_COMMITS)) return;
    this.#commits = 0;
    this.#inFlight = true;
    this.#ensureThread().postMessage('checkpoint');
  }

  /** The end of the next checkpoint (undefined when the thread failed or closed). */
  nextCheckpoint(): Promise<CheckpointResult | undefined> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Whether checkpoints have gone back to the ledger's own connection. */
  get failed(): boolean {
    return this.#failed;
  }

  #ensureThread(): Worker {
    if (this.#thread) return this.#thread;
    const thread = new Worker(THREAD_CODE, {
      eval: true,
      workerData: {
        file: this.file,
        busyTimeoutMs: this.opts.busyTimeoutMs,
        betterSqlite3: createRequire(__filename).resolve('better-sqlite3'),
      },
    });
    // An idle thread does not keep the process alive: the ledger's close ends it.
    thread.unref();
    thread.on('message', (msg: { done?: CheckpointResult; failed?: string }) => {
      this.#inFlight = false;
      if (msg.failed !== undefined) return this.#fail(msg.failed);
      this.checkpoints += 1;
      this.#settle(msg.done);
    });
    thread.on('error', (err) => this.#fail(err.message));
    thread.on('exit', () => {
      if (!this.#closed) this.#fail('the checkpoint thread exited');
    });
    this.#thread = thread;
    return thread;
  }

  #fail(reason: string): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#inFlight = false;
    try {
      if (this.database.open) this.database.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    } catch {
      // The connection is closing: it checkpoints on its close.
    }
    this.opts.onFailure?.(reason);
    void this.#thread?.terminate();
    this.#thread = undefined;
    this.#settle(undefined);
  }

  #settle(result: CheckpointResult | undefined): void {
    for (const resolve of this.#waiters.splice(0)) resolve(result);
  }

  /** Ends the thread, after its checkpoint in flight; before the ledger's connection closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    if (thread) {
      // Waited for: the process stays up until the thread has closed its connection.
      thread.ref();
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      thread.postMessage('close');
      await exited;
    }
    this.#settle(undefined);
  }
}
