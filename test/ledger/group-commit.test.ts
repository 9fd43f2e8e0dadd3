/**
 * The SQLite ledger's group commit: an operation that changed rows returns only after an fsync
 * of the WAL that began after its commit; fsyncs are shared by the commits made while one runs;
 * a failed fsync fails the operations it was to serve and every operation after it (the ledger is
 * lost); reads wait for none; and the ledger's own connection commits that way
 * (synchronous = NORMAL, the WAL fsynced by the ledger).
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

  it('an fsync that fails fails the flushes it served and every flush after it, with no fsync again', async () => {
    const gate = gatedSync();
    const fsync = new SharedFsync('unused', gate.sync);
    const lost = tracked(fsync.lost);
    const a = tracked(fsync.flush());
    await settle();
    expect(fsync.failure).toBeUndefined();
    expect(lost.done).toBe(false);
    gate.fail(0, new Error('EIO: i/o error, fsync'));
    await settle();
    expect(a.done).toBe(false);
    expect(String(a.error)).toContain('EIO');
    expect((a.error as { code?: string }).code).toBe('SQLITE_IOERR_FSYNC');
    expect(lost.done).toBe(true);
    expect(await fsync.lost).toBe(a.error);

    // A later fsync that succeeds would prove nothing about the pages the failed one dropped.
    const b = tracked(fsync.flush());
    await settle();
    expect(gate.calls()).toBe(1);
    expect(b.error).toBe(a.error);
    expect(String(b.error)).toMatch(/no later fsync can prove them/);
  });

  describe('of a real file', () => {
    let dir: string;
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('fsyncs the file, and reports a file that is not there without giving up on it', async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-fsync-'));
      const file = path.join(dir, 'data');
      writeFileSync(file, 'x');
      const fsync = new SharedFsync(file);
      await fsync.flush();
      await fsync.close();

      const missing = new SharedFsync(path.join(dir, 'missing'));
      await expect(missing.flush()).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC', message: /ENOENT/ });
      // No fsync ran, so none failed: once the file can be opened, a flush runs one.
      expect(missing.failure).toBeUndefined();
      writeFileSync(path.join(dir, 'missing'), 'x');
      await missing.flush();
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

  it('after a failed fsync, a retried write that changes nothing fails too, and so does a read', async () => {
    const { db, gate } = openGated();
    await sql`create unique index t_n on t (n)`.execute(db);
    const insert = tracked(
      db
        .insertInto('t')
        .values({ n: 1 })
        .onConflict((oc) => oc.doNothing())
        .execute(),
    );
    await settle();
    gate.fail(gate.calls() - 1, new Error('EIO: i/o error, fsync'));
    await settle();
    expect(String(insert.error)).toContain('EIO');
    // The row is there to SQLite, but not proven on disk: its retry (idempotent, no change, so
    // no fsync of its own) must not return as if it were durable.
    const retry = db
      .insertInto('t')
      .values({ n: 1 })
      .onConflict((oc) => oc.doNothing())
      .execute();
    await expect(retry).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(db.selectFrom('t').select('n').execute()).rejects.toThrow(/EIO/);
  });

  it('a transaction returns after the fsync that follows its commit; one that fails to fsync fails', async () => {
    const { db, gate, database } = openGated();
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
    // Committed, but not proven on disk: SQLite sees the rows, the ledger serves nothing more.
    expect(database.prepare('select count(*) from t').pluck().get()).toBe(2);
    await expect(sql`select count(*) from t`.execute(db)).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
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

  it('after a failed fsync of its WAL every operation fails as unavailable, and the ledger says it is lost', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-ledger-fsync-'));
    const file = path.join(dir, 'ledger.db');
    ledger = await openLedger(`sqlite:${file}`);
    await ledger.ensureBatch({ batchId: 'b1', workflowId: 'w1', total: 1, state: 'RUNNING' });

    const probe = await open(file, 'r');
    const fileHandle = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = vi
      .spyOn(fileHandle, 'sync')
      .mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' }));
    let lost: Error | undefined;
    void ledger.lost!.then((err) => (lost = err));

    const b2 = { batchId: 'b2', workflowId: 'w2', total: 1, state: 'RUNNING' as const };
    await expect(ledger.ensureBatch(b2)).rejects.toMatchObject({
      name: 'LedgerUnavailableError',
      code: 'SQLITE_IOERR_FSYNC',
      message: expect.stringMatching(/fsync of .*ledger\.db-wal failed: EIO/),
    });
    // Its retry finds the row and changes nothing: before, it returned as if the row were on disk.
    await expect(ledger.ensureBatch(b2)).rejects.toMatchObject({ name: 'LedgerUnavailableError' });
    await expect(ledger.getBatch('b1')).rejects.toMatchObject({ name: 'LedgerUnavailableError' });
    expect(sync).toHaveBeenCalledTimes(1);

    await ledger.lost;
    expect(lost).toMatchObject({ name: 'LedgerUnavailableError', code: 'SQLITE_IOERR_FSYNC' });
    expect(lost!.message).toMatch(/^ledger lost \(SQLite file .*ledger\.db\): fsync of .* failed: EIO.*restart it/);
  });
});
