/**
 * The files of an input as it is read, kept in a temporary SQLite database on disk instead of in
 * memory, so an input of any size is checked in the same memory: the line each (order, file) was
 * first seen on (to spot duplicates), and, for a dry run, its target and source path, whether it
 * was skipped, its sha256 once computed, and whether it was found already recorded.
 *
 * The database is SQLite's own temporary kind (an empty file name): a file in the temporary
 * folder that SQLite removes when it is closed, or at once on a crash; its page cache is bounded.
 */
import Database from 'better-sqlite3';
import type { SyncItem } from '../shared';
import type { SeenFiles } from './manifest-record';

/** Rows written between two commits. */
const COMMIT_EVERY = 5000;
/** SQLite's page cache, in KiB (the rest of the database lives in its file). */
const CACHE_KIB = 16 * 1024;

export interface SpooledFile {
  orderId: string;
  fileName: string;
  line: number;
  /** The item's own target; null when it has none (the default applies). */
  target: string | null;
  sourcePath: string;
  sha256: string | null;
  skipped: boolean;
  counted: boolean;
}

interface Row {
  order_id: string;
  file_name: string;
  line: number;
  target: string | null;
  source_path: string | null;
  sha256: string | null;
  skipped: number;
  counted: number;
}

export class SpooledFiles implements SeenFiles {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, string, number, string | null, string | null]>;
  private readonly firstLine: Database.Statement<[string, string], { line: number }>;
  private readonly get: Database.Statement<[string, string], Row>;
  private readonly setSkipped: Database.Statement<[string, string]>;
  private readonly setSha256: Database.Statement<[string, string, string]>;
  private readonly setCounted: Database.Statement<[string, string]>;
  private writes = 0;
  private inTransaction = false;
  private closed = false;

  /** `details`: keep each file's target and source path too (a dry run matches them with the ledger). */
  constructor(private readonly details = false) {
    this.db = new Database('');
    this.db.pragma(`cache_size = -${CACHE_KIB}`);
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.exec(`CREATE TABLE files (
      order_id TEXT NOT NULL, file_name TEXT NOT NULL, line INTEGER NOT NULL,
      target TEXT, source_path TEXT, sha256 TEXT,
      skipped INTEGER NOT NULL DEFAULT 0, counted INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (order_id, file_name)) WITHOUT ROWID`);
    this.insert = this.db.prepare(
      'INSERT INTO files (order_id, file_name, line, target, source_path) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.firstLine = this.db.prepare('SELECT line FROM files WHERE order_id = ? AND file_name = ?');
    this.get = this.db.prepare('SELECT * FROM files WHERE order_id = ? AND file_name = ?');
    this.setSkipped = this.db.prepare('UPDATE files SET skipped = 1 WHERE order_id = ? AND file_name = ?');
    this.setSha256 = this.db.prepare('UPDATE files SET sha256 = ? WHERE order_id = ? AND file_name = ?');
    this.setCounted = this.db.prepare('UPDATE files SET counted = 1 WHERE order_id = ? AND file_name = ?');
  }

  private write<T>(fn: () => T): T {
    if (!this.inTransaction) {
      this.db.exec('BEGIN');
      this.inTransaction = true;
    }
    const result = fn();
    if (++this.writes % COMMIT_EVERY === 0) this.commit();
    return result;
  }

  private commit(): void {
    if (!this.inTransaction) return;
    this.db.exec('COMMIT');
    this.inTransaction = false;
  }

  firstLineOf(item: SyncItem, line: number): number | undefined {
    return this.write(() => {
      const details = this.details ? [item.target ?? null, item.sourcePath] : [null, null];
      const { changes } = this.insert.run(item.orderId, item.fileName, line, details[0]!, details[1]!);
      return changes === 1 ? undefined : this.firstLine.get(item.orderId, item.fileName)!.line;
    });
  }

  /** Marks a file seen before as left out of the input (skipped as invalid). */
  skip(item: SyncItem): void {
    this.write(() => this.setSkipped.run(item.orderId, item.fileName));
  }

  /** The file of this order and name, when the input has it. */
  find(orderId: string, fileName: string): SpooledFile | undefined {
    const row = this.get.get(orderId, fileName);
    if (!row) return undefined;
    return {
      orderId: row.order_id,
      fileName: row.file_name,
      line: row.line,
      target: row.target,
      sourcePath: row.source_path ?? '',
      sha256: row.sha256,
      skipped: row.skipped === 1,
      counted: row.counted === 1,
    };
  }

  rememberSha256(f: { orderId: string; fileName: string }, sha256: string): void {
    this.write(() => this.setSha256.run(sha256, f.orderId, f.fileName));
  }

  markCounted(f: { orderId: string; fileName: string }): void {
    this.write(() => this.setCounted.run(f.orderId, f.fileName));
  }

  /** Closes and so removes the database. Safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
