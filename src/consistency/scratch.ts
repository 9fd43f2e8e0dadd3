/**
 * The scratch store of one consistency check: the batch's files and the copies held under its
 * orders, in a SQLite file of its own in the temporary folder, so the memory a check needs is
 * bounded by the page size, not by the size of the batch or of the recording system.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Receipt } from '../recording-system/port';

/** A file of the batch: from its manifest (not started) or from the ledger (started). */
export interface ScratchFile {
  target: string;
  orderId: string;
  fileName: string;
  started: boolean;
}

/** The store is removed by `close()`, when the check ends. */
export class Scratch {
  readonly #dir: string;
  readonly #db: Database.Database;
  readonly #addFile: Database.Statement;
  readonly #addHeld: Database.Statement;
  readonly #getHeld: Database.Statement;

  constructor() {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-reconcile-'));
    this.#db = new Database(path.join(this.#dir, 'scratch.db'));
    this.#db.pragma('journal_mode = OFF');
    this.#db.pragma('synchronous = OFF');
    this.#db.pragma('cache_size = -8000');
    this.#db.exec(`
      create table orders (order_id text primary key) without rowid;
      create table files (target text, order_id text, file_name text, started integer,
        primary key (target, order_id, file_name)) without rowid;
      create table held (target text, order_id text, file_name text, receipt text,
        primary key (target, order_id, file_name));
    `);
    this.#addFile = this.#db.prepare(
      `insert into files values (?, ?, ?, ?)
       on conflict (target, order_id, file_name) do update set started = max(started, excluded.started)`,
    );
    const addOrder = this.#db.prepare('insert or ignore into orders values (?)');
    this.#addHeld = this.#db.prepare(
      'insert or replace into held select ?, ?, ?, ? where exists (select 1 from orders where order_id = ?)',
    );
    this.#getHeld = this.#db.prepare('select receipt from held where target = ? and order_id = ? and file_name = ?');
    this.addFiles = this.#db.transaction((files: ScratchFile[]) => {
      for (const f of files) {
        addOrder.run(f.orderId);
        this.#addFile.run(f.target, f.orderId, f.fileName, f.started ? 1 : 0);
      }
    });
    this.addHeld = this.#db.transaction((target: string, receipts: Receipt[]) => {
      for (const r of receipts) this.#addHeld.run(target, r.orderId, r.fileName, JSON.stringify(r), r.orderId);
    });
  }

  readonly addFiles: (files: ScratchFile[]) => void;
  readonly addHeld: (target: string, receipts: Receipt[]) => void;

  targets(): string[] {
    return (this.#db.prepare('select distinct target from files order by target').all() as { target: string }[]).map(
      (r) => r.target,
    );
  }

  heldCount(): number {
    return (this.#db.prepare('select count(*) as n from held').get() as { n: number }).n;
  }

  fileCount(): number {
    return (this.#db.prepare('select count(*) as n from files').get() as { n: number }).n;
  }

  heldCopy(target: string, orderId: string, fileName: string): Receipt | null {
    const row = this.#getHeld.get(target, orderId, fileName) as { receipt: string } | undefined;
    return row ? (JSON.parse(row.receipt) as Receipt) : null;
  }

  /** Pages of the held copies no started file accounts for; `ofBatch` when the manifest lists them. */
  *unstartedHeld(pageSize: number): Generator<{ target: string; receipt: Receipt; ofBatch: boolean }[]> {
    const page = this.#db.prepare(
      `select h.rowid as id, h.target as target, h.receipt as receipt, f.started as started
       from held h left join files f on f.target = h.target and f.order_id = h.order_id and f.file_name = h.file_name
       where h.rowid > ? and (f.started is null or f.started = 0) order by h.rowid limit ?`,
    );
    let after = 0;
    for (;;) {
      const rows = page.all(after, pageSize) as {
        id: number;
        target: string;
        receipt: string;
        started: number | null;
      }[];
      if (rows.length === 0) return;
      yield rows.map((r) => ({
        target: r.target,
        receipt: JSON.parse(r.receipt) as Receipt,
        ofBatch: r.started === 0,
      }));
      after = rows[rows.length - 1]!.id;
    }
  }

  close(): void {
    try {
      this.#db.close();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}
