/**
 * For tests and benchmarks that set up or inspect what no ledger method does: SQL on a ledger's
 * own connection (a per-connection pragma, a connection held checked out, a row removed behind
 * the ledger's back), and a SQLite ledger file locked as another process would lock it.
 * Production code never imports this module; the ledger's index does not export it.
 */
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import type { Ledger } from './port';
import { queryLayerOf } from './sql-ledger';
import { parseLedgerUrl } from './url';

export function ledgerSql(ledger: Ledger) {
  const db = queryLayerOf(ledger);
  return {
    /** Runs one statement, `${}` values bound as parameters; returns its rows. */
    async query<R = Record<string, unknown>>(strings: TemplateStringsArray, ...values: unknown[]): Promise<R[]> {
      return (await sql<R>(strings, ...values).execute(db)).rows;
    },
    /** Runs one statement as written, for those that take no parameters (a pragma's value). */
    async raw<R = Record<string, unknown>>(statement: string): Promise<R[]> {
      return (await sql.raw<R>(statement).execute(db)).rows;
    },
    /** Checks out one of the ledger's connections, runs `select 1` on it and keeps it for `ms`. */
    async holdConnection(ms: number): Promise<void> {
      await db.connection().execute(async (conn) => {
        await sql`select 1`.execute(conn);
        await new Promise((resolve) => setTimeout(resolve, ms));
      });
    },
  };
}

/**
 * Takes the write lock of the SQLite file a ledger URL names, on a connection of its own, as
 * another process writing to the file would; the ledger's writes wait (and then fail as
 * unavailable) until `release` ends that transaction. Releasing twice is harmless.
 */
export function lockSqliteLedger(url: string): { release(): void } {
  const location = parseLedgerUrl(url);
  if (location.dialect !== 'sqlite' || location.filename === ':memory:') {
    throw new Error(`lockSqliteLedger: ${url} is not a SQLite ledger file`);
  }
  const other = new Database(location.filename);
  other.exec('begin exclusive');
  return {
    release() {
      if (!other.open) return;
      if (other.inTransaction) other.exec('rollback');
      other.close();
    },
  };
}
