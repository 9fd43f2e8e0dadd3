/**
 * The ledger URL (`IMAGE_SYNC_LEDGER_URL`): which backend holds the ledger and where. Reading
 * it touches no database.
 */
import path from 'node:path';
import { redactSecrets } from './safe-text';

/** The ledger used when `IMAGE_SYNC_LEDGER_URL` is not set. */
export const DEFAULT_LEDGER_URL = 'sqlite:./.image-sync/ledger.db';

/** The environment variable that selects the ledger. */
export const LEDGER_URL_ENV = 'IMAGE_SYNC_LEDGER_URL';

const ACCEPTED_FORMS =
  'sqlite:<path> (relative to the working directory), sqlite::memory:, ' +
  'or postgres://user[:password]@host[:port]/database[?schema=name] (postgresql:// also accepted)';

/** A PostgreSQL schema name the ledger accepts: lower case, unquoted identifier. */
const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Where a ledger lives, as read from its URL. */
export type LedgerLocation =
  | {
      dialect: 'sqlite';
      /** Absolute path of the database file, or `:memory:`. */
      filename: string;
    }
  | {
      dialect: 'postgres';
      /** The URL handed to `pg`, with the `schema` parameter turned into a search_path option. */
      connectionString: string;
      /** The schema named by `?schema=`, when given. */
      schema?: string;
    };

/**
 * Reads a ledger URL:
 * - `sqlite:<path>`: a SQLite file, relative to `cwd` unless absolute;
 * - `sqlite::memory:`: a private in-memory SQLite database;
 * - `postgres://...` or `postgresql://...`: PostgreSQL. An optional `schema=<name>` parameter
 *   keeps the ledger in that schema (created when missing); otherwise the connection's current
 *   schema (normally `public`) is used.
 *
 * Throws an Error naming the accepted forms for anything else.
 */
export function parseLedgerUrl(url: string, cwd: string = process.cwd()): LedgerLocation {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();

  if (scheme === 'sqlite') {
    const rest = trimmed.slice('sqlite:'.length);
    if (rest === ':memory:') return { dialect: 'sqlite', filename: ':memory:' };
    if (rest.trim() === '') throw invalidUrl(url, 'the SQLite path is empty');
    return { dialect: 'sqlite', filename: path.resolve(cwd, rest) };
  }

  if (scheme === 'postgres' || scheme === 'postgresql') {
    return parsePostgresUrl(trimmed);
  }

  throw invalidUrl(url, scheme ? `unsupported scheme "${scheme}:"` : 'no scheme');
}

function parsePostgresUrl(url: string): LedgerLocation {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return { dialect: 'postgres', connectionString: url };

  const base = url.slice(0, queryStart);
  const params = new URLSearchParams(url.slice(queryStart + 1));
  const schema = params.get('schema');
  if (schema === null) return { dialect: 'postgres', connectionString: url };

  if (!PG_SCHEMA_NAME.test(schema)) {
    throw invalidUrl(
      url,
      `schema "${schema}" is not a valid schema name (lower-case letters, digits and _, not starting with a digit, at most 63)`,
    );
  }
  params.delete('schema');
  const searchPath = `-c search_path=${schema}`;
  const options = params.get('options');
  params.set('options', options ? `${options} ${searchPath}` : searchPath);
  return { dialect: 'postgres', connectionString: `${base}?${params.toString()}`, schema };
}

function invalidUrl(url: string, problem: string): Error {
  return new Error(`invalid ledger URL "${redactSecrets(url)}": ${problem}; expected ${ACCEPTED_FORMS}`);
}

/** Names a ledger's database for messages, without credentials. */
export function describeLedgerLocation(location: LedgerLocation): string {
  if (location.dialect === 'sqlite') {
    return location.filename === ':memory:' ? 'SQLite in memory' : `SQLite file ${location.filename}`;
  }
  try {
    const u = new URL(location.connectionString);
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `PostgreSQL at ${u.hostname || '(socket)'}${u.port ? `:${u.port}` : ''}/${database}${location.schema ? ` schema ${location.schema}` : ''}`;
  } catch {
    return 'PostgreSQL';
  }
}
