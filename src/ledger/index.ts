/**
 * The consistency ledger (docs/concepts.md, "The ledger"):
 * - port.ts: the Ledger interface callers use, and its row types (taken from schema.ts);
 * - schema.ts: the tables as Kysely sees them; migrations.ts: how they are created;
 * - queries/: the SQL, one file per table; sql-ledger.ts puts them together behind the port;
 * - url.ts: reading a ledger URL; connection.ts: opening the database it names;
 * - availability.ts: retrying a database that is briefly away; safe-text.ts: what text is stored.
 *
 * A new table and its queries: its interface in schema.ts (and in LedgerDatabase), a new
 * migration in migrations.ts (applied ones never change), its row type and methods in port.ts,
 * a queries/<table>.ts whose factory returns those methods (`satisfies Partial<LedgerQueries>`),
 * spread into allQueries in sql-ledger.ts, and tests in test/ledger on both backends.
 *
 * Callers import from here; only the ledger's own modules (and testing.ts, for tests) hold the
 * query layer.
 */
export * from './availability';
export * from './connection';
export * from './port';
export * from './safe-text';
export * from './schema';
export * from './url';
