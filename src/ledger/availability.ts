/**
 * When the ledger's database cannot be reached or written: which errors pass with time (a
 * PostgreSQL restart or failover, a SQLite file locked by another writer), how long the ledger
 * retries them itself, and the one error it throws when they persist.
 *
 * Every ledger write is idempotent by key (see sql-ledger.ts), so retrying a statement whose
 * answer was lost (the connection dropped after the server committed) writes nothing twice.
 */
import { redactSecrets } from './safe-text';
import type { LedgerDialect } from './schema';

/**
 * The ledger's database is unavailable (down, restarting, unreachable, locked, disk full) and
 * stayed so through the ledger's own short retries. The operation did not take effect, or took
 * effect once; repeating it later is safe.
 */
export class LedgerUnavailableError extends Error {
  /** Which database, without credentials: `PostgreSQL at host:port/db` or `SQLite file <path>`. */
  readonly backend: string;
  /** The database's own error code when it gave one (57P01, ECONNREFUSED, SQLITE_FULL, ...). */
  readonly code: string | undefined;
  constructor(message: string, opts: { backend: string; code?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LedgerUnavailableError';
    this.backend = opts.backend;
    this.code = opts.code;
  }
}

/**
 * Whether an error is a {@link LedgerUnavailableError}, also when it crossed a module boundary
 * that breaks `instanceof` (it is recognised by name).
 */
export function isLedgerUnavailableError(error: unknown): error is LedgerUnavailableError {
  return error instanceof LedgerUnavailableError || (error instanceof Error && error.name === 'LedgerUnavailableError');
}

/** How long the ledger retries a transient failure before throwing {@link LedgerUnavailableError}. */
export interface LedgerRetryPolicy {
  /** Give up once this much time has passed since the first attempt, in milliseconds. */
  maxElapsedMs: number;
  /** First wait between attempts; doubles up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_LEDGER_RETRY: LedgerRetryPolicy = {
  maxElapsedMs: 10_000,
  initialDelayMs: 100,
  maxDelayMs: 1_000,
};

/**
 * PostgreSQL error codes (SQLSTATE) of a connection that ended or could not be made: the
 * server shut down or restarted (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
 * cannot_connect_now), class 08 connection exceptions, and too many connections (53300).
 */
const PG_TRANSIENT_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);

/** Socket errors of a connection that dropped or could not be made. */
const SOCKET_TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** Messages of `pg` for a connection that ended under a query, or could not be made in time. */
const PG_TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /not queryable/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /server closed the connection unexpectedly/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The errors inside an AggregateError (a connect that tried several addresses), else the error. */
function leaves(error: unknown): unknown[] {
  if (error instanceof AggregateError && error.errors.length > 0) return [error, ...error.errors];
  return [error];
}

/** Whether a PostgreSQL (or socket) error is one that passes once the server is back. */
export function isTransientPgError(error: unknown): boolean {
  return leaves(error).some((e) => {
    const code = codeOf(e);
    if (code && (PG_TRANSIENT_CODES.has(code) || SOCKET_TRANSIENT_CODES.has(code))) return true;
    const message = e instanceof Error ? e.message : '';
    return PG_TRANSIENT_MESSAGES.some((m) => m.test(message));
  });
}

/** What a SQLite error means for the ledger's availability, by its (extended) result code. */
export type SqliteUnavailability = { kind: 'locked' | 'full' | 'io'; code: string };

export function sqliteUnavailability(error: unknown): SqliteUnavailability | undefined {
  const code = codeOf(error);
  if (!code?.startsWith('SQLITE_')) return undefined;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return { kind: 'locked', code };
  if (code === 'SQLITE_FULL') return { kind: 'full', code };
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_READONLY'))
    return { kind: 'io', code };
  return undefined;
}

const SQLITE_WORDS: Record<SqliteUnavailability['kind'], string> = {
  locked: 'ledger database is locked (another process holds its write lock)',
  full: 'ledger database cannot be written: disk full',
  io: 'ledger database cannot be read or written (I/O error)',
};

function messageOf(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message || error.name : String(error));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs one ledger operation, retrying the transient failures of its backend within `policy`,
 * and throws {@link LedgerUnavailableError} when they persist. Other errors pass unchanged.
 *
 * On SQLite, a full disk or an I/O error is not retried here (waiting a few seconds does not
 * free a disk); a locked file is, since its busy timeout has already waited once per attempt.
 */
export async function withLedgerRetry<T>(
  run: () => Promise<T>,
  ctx: {
    dialect: LedgerDialect;
    backend: string;
    operation: string;
    policy?: LedgerRetryPolicy;
    onRetry?: (error: unknown, attempt: number) => void;
  },
): Promise<T> {
  const policy = ctx.policy ?? DEFAULT_LEDGER_RETRY;
  const started = Date.now();
  let delay = policy.initialDelayMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      if (error instanceof LedgerUnavailableError) throw error;
      let retryable: boolean;
      let reason: string;
      if (ctx.dialect === 'postgres') {
        if (!isTransientPgError(error)) throw error;
        retryable = true;
        reason = `${codeOf(error) ? `${codeOf(error)} ` : ''}${messageOf(error)}`;
      } else {
        const sqlite = sqliteUnavailability(error);
        if (!sqlite) throw error;
        retryable = sqlite.kind === 'locked';
        reason = `${SQLITE_WORDS[sqlite.kind]} (${sqlite.code}: ${messageOf(error)})`;
      }
      const elapsed = Date.now() - started;
      if (!retryable || elapsed + delay > policy.maxElapsedMs) {
        const tried = attempt > 1 ? `; ${attempt} attempts over ${Math.round(elapsed / 100) / 10} s` : '';
        throw new LedgerUnavailableError(
          `ledger unavailable (${ctx.backend}) during ${ctx.operation}: ${reason}${tried}`,
          { backend: ctx.backend, code: codeOf(error), cause: error },
        );
      }
      ctx.onRetry?.(error, attempt);
      await sleep(delay);
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}
