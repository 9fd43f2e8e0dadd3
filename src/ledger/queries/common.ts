/** What the ledger's query modules share. */

/** The time a row is written, as the ledger's columns hold it: ISO-8601 text, UTC, milliseconds. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** How many values one statement binds at most: well under SQLite's and PostgreSQL's parameter limits. */
export const MAX_BOUND_VALUES = 500;

/** `values` in slices of at most `size`, for statements that bind one parameter (or row) per value. */
export function slices<T>(values: readonly T[], size = MAX_BOUND_VALUES): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}
