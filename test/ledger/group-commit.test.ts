/**
 * The SQLite ledger's group commit: an operation that changed rows returns only after an fsync
 * of the WAL that began after its commit; fsyncs are shared by the commits made while one runs;
 * a failed fsync fails the operations it was to serve; reads wait for none; and the ledger's
 * own connection commits that way (synchronous = NORMAL, the WAL fsynced by the ledger).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openLedger, type Ledger } from '../../src/ledger';
import { GroupCommitSqliteDialect, SharedFsync } from '../../src/ledger/group-commit';
import { ledgerSql } from '../../src/ledger/testing';

/** An fsync the test completes (or fails) by hand. */
function gatedSync() {
  const pending: { resolve: () => void; reject: (err: Error) => void }[] = [];
  return {
    calls: () => pending.length,
    sync: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })),
    complete: (n: number) => pending[n]!.resolve(),
    fail: (n: number, err: Error) => pending[n]!.reject(err),
  };
}

/** Lets the promise jobs and I/O callbacks queued so far run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function tracked<T>(p: Promise<T>) {
  const state = { done: false, error: undefined as unknown };
  p.then(
    () => (state.done = true),
    (err: unknown) => (state.error = err),
  );
  return state;
}

describe('shared fsync', () => {
  it('a flush asked for while an fsync runs waits for the next one, which serves all such flushes', async () => {
    const gate = gatedSync();
    const fsync = new SharedFsync('unused', gate.sync);
    const first = tracked(fsync.flush());
    await settle();
    expect(gate.calls()).toBe(1);
    const later = [fsync.flush(), fsync.flush(), fsync.flush()].map(tracked);
    await settle();
    expect(gate.calls()).toBe(1);

    gate.complete(0);
    await settle();
    expect(first.done).toBe(true);
    // The first fsync began before these were asked for: it does not prove their commits.
    expect(later.some((s) => s.done)).toBe(false);
    expect(gate.calls()).toBe(2);

    gate.complete(1);
    await settle();
    expect(later.every((s) => s.done)).toBe(true);
    expect(gate.calls()).toBe(2);
  });

  it('an fsync that fails fails the flushes it served; the next flush runs a new one', async () => {
    const gate = gatedSync();
    const fsync = new SharedFsync('unused', gate.sync);
    const a = tracked(fsync.flush());
    await settle();
    gate.fail(0, new Error('EIO: i/o error, fsync'));
    await settle();
    expect(a.done).toBe(false);
    expect(String(a.error)).toContain('EIO');
    expect((a.error as { code?: string }).code).toBe('SQLITE_IOERR_FSYNC');

    const b = tracked(fsync.flush());
    await settle();
    expect(gate.calls()).toBe(2);
    gate.complete(1);
    await settle();
    expect(b.done).toBe(true);
  });

  describe('of a real file', () => {
    let dir: string;
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('fsyncs the file, and reports a file that is not there', async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-fsync-'));
      const file = path.join(dir, 'data');
      writeFileSync(file, 'x');
      const fsync = new SharedFsync(file);
      await fsync.flush();
      await fsync.close();

      const missing = new SharedFsync(path.join(dir, 'missing'));
      await expect(missing.flush()).rejects.toThrow(/ENOENT/);
      await missing.close();
    });
  });
});

describe('group commit on SQLite', () => {
  let dir: string;
  let db: Kysely<{ t: { n: number } }> | undefined;
  afterEach(async () => {
    await db?.destroy();
    db = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function openGated() {
    dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-group-commit-'));
    const database = new Database(path.join(dir, 'db.sqlite'));
    database.pragma('journal_mode = WAL');
    database.exec('CREATE TABLE t (n INTEGER)');
    const gate = gatedSync();
    db = new Kysely({
      dialect: new GroupCommitSqliteDialect({ database }, database, new SharedFsync('unused', gate.sync)),
    });
    return { db, gate, database };
  }

  it('a write returns after its fsync; other queries run meanwhile and see it committed', async () => {
    const { db, gate } = openGated();
    const insert = tracked(db.insertInto('t').values({ n: 1 }).execute());
    await settle();
    expect(gate.calls()).toBe(1);
    expect(insert.done).toBe(false);

    // The connection was released before the wait: a read runs, needs no fsync, sees the row.
    const rows = await db.selectFrom('t').select('n').execute();
    expect(rows).toEqual([{ n: 1 }]);
    expect(gate.calls()).toBe(1);

    gate.complete(0);
    await settle();
    expect(insert.done).toBe(true);
  });

  it('queries on a database closed under it fail one after another, none left waiting', async () => {
    const { db, database } = openGated();
    database.close();
    await expect(db.selectFrom('t').select('n').execute()).rejects.toThrow(/not open/);
    await expect(db.selectFrom('t').select('n').execute()).rejects.toThrow(/not open/);
  });

  it('a transaction returns after the fsync that follows its commit; one that fails to fsync fails', async () => {
    const { db, gate } = openGated();
    const tx = tracked(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('t').values({ n: 1 }).execute();
        await trx.insertInto('t').values({ n: 2 }).execute();
      }),
    );
    await settle();
    expect(gate.calls()).toBe(1);
    gate.fail(0, new Error('EIO: i/o error, fsync'));
    await settle();
    expect(String(tx.error)).toContain('EIO');
    // Committed, but not proven on disk: the caller retries (the ledger's writes are idempotent).
    expect(await sql<{ c: number }>`select count(*) as c from t`.execute(db).then((r) => r.rows[0]!.c)).toBe(2);
  });
});

describe('the SQLite ledger', () => {
  let dir: string;
  let ledger: Ledger | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await ledger?.close();
    ledger = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits with synchronous = NORMAL and fsyncs its WAL before a write returns, not for a read', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-ledger-fsync-'));
    const file = path.join(dir, 'ledger.db');
    ledger = await openLedger(`sqlite:${file}`);
    expect(await ledgerSql(ledger).raw<{ synchronous: number }>('pragma synchronous')).toEqual([{ synchronous: 1 }]);

    const probe = await open(file, 'r');
    const fileHandle = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = vi.spyOn(fileHandle, 'sync');

    await ledger.ensureBatch({ batchId: 'b1', workflowId: 'w1', total: 1, state: 'RUNNING' });
    expect(sync).toHaveBeenCalled();
    const calls = sync.mock.calls.length;
    expect(await ledger.getBatch('b1')).toMatchObject({ batch_id: 'b1' });
    expect(sync.mock.calls.length).toBe(calls);
  });
});
