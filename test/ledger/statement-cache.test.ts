/**
 * The SQLite ledger's kept prepared statements: the same SQL gets the same statement, a
 * statement still being iterated is never handed out twice, the kept set stays bounded, and a
 * kept statement still runs after the schema changes under it.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cachingStatements } from '../../src/ledger/statement-cache';

describe('kept prepared statements (SQLite)', () => {
  let raw: Database.Database | undefined;
  afterEach(() => {
    if (raw?.open) raw.close();
  });

  const open = (size?: number) => {
    raw = new Database(':memory:');
    raw.exec('CREATE TABLE t (n INTEGER)');
    for (let n = 1; n <= 3; n++) raw.prepare('INSERT INTO t VALUES (?)').run(n);
    return cachingStatements(raw, size);
  };

  it('gives the same statement back for the same SQL', () => {
    const db = open();
    const a = db.prepare('SELECT n FROM t WHERE n = ?');
    const b = db.prepare('SELECT n FROM t WHERE n = ?');
    expect(b).toBe(a);
    expect(b.all([2])).toEqual([{ n: 2 }]);
    expect(db.prepare('SELECT n FROM t WHERE n > ?')).not.toBe(a);
  });

  it('a statement mid-iteration is not handed out again: a second use gets its own', () => {
    const db = open();
    const sql = 'SELECT n FROM t ORDER BY n';
    const outer = db.prepare(sql);
    const seen: number[] = [];
    for (const row of outer.iterate([]) as Iterable<{ n: number }>) {
      const inner = db.prepare(sql);
      expect(inner).not.toBe(outer);
      seen.push(row.n, (inner.all([]) as { n: number }[]).length);
    }
    expect(seen).toEqual([1, 3, 2, 3, 3, 3]);
    // Done iterating: the kept one is handed out again.
    expect(db.prepare(sql)).toBe(outer);
  });

  it('keeps at most its size, dropping the least recently used', () => {
    const db = open(2);
    const a = db.prepare('SELECT 1');
    const b = db.prepare('SELECT 2');
    expect(db.prepare('SELECT 1')).toBe(a); // now the most recent
    db.prepare('SELECT 3'); // drops SELECT 2
    expect(db.prepare('SELECT 1')).toBe(a);
    expect(db.prepare('SELECT 2')).not.toBe(b);
  });

  it('a kept statement runs after the schema changes under it', () => {
    const db = open();
    const select = db.prepare('SELECT * FROM t WHERE n = ?');
    expect(select.all([1])).toEqual([{ n: 1 }]);
    raw!.exec("ALTER TABLE t ADD COLUMN label TEXT DEFAULT 'x'");
    expect(db.prepare('SELECT * FROM t WHERE n = ?').all([1])).toEqual([{ n: 1, label: 'x' }]);
  });

  it('closing closes the database', () => {
    const db = open();
    db.prepare('SELECT 1');
    db.close();
    expect(raw!.open).toBe(false);
  });
});
