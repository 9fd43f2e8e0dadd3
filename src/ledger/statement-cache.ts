/**
 * Prepared statements kept for reuse on a SQLite ledger. Kysely prepares every query it runs
 * anew, and on the worker's hot path (an interaction opened, its events written, its status
 * set, several times a file) SQLite's parsing and planning of the same few statements was a
 * measurable share of the worker's CPU. The same SQL text gets the same statement back; SQLite
 * prepares a kept statement again by itself when the schema changes under it.
 */
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import type Database from 'better-sqlite3';

/** Distinct SQL texts kept; the least recently used goes first past it. */
export const STATEMENT_CACHE_SIZE = 256;

/**
 * The database as Kysely's SQLite dialect uses it, with prepare() answered from the kept
 * statements. A statement still busy (a read being iterated) is not handed out twice: the
 * caller gets a fresh one for that use.
 */
export function cachingStatements(database: Database.Database, size = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const kept = new Map<string, Database.Statement>();
  return {
    prepare(sql: string): SqliteStatement {
      const found = kept.get(sql);
      if (found && !found.busy) {
        // Most recently used last: a Map keeps insertion order.
        kept.delete(sql);
        kept.set(sql, found);
        return found;
      }
      const statement = database.prepare(sql);
      if (!found) {
        kept.set(sql, statement);
        if (kept.size > size) kept.delete(kept.keys().next().value!);
      }
      return statement;
    },
    close(): void {
      kept.clear();
      database.close();
    },
  };
}
