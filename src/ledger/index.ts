/** The consistency ledger: the port, its SQL implementation, schema and migrations. */
export * from './availability';
export * from './port';
export * from './schema';
export * from './migrations';
export * from './safe-text';
export * from './sql-ledger';
export * from './pacing';
