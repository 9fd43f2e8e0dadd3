/**
 * Read-only ledger queries behind the operator commands: `list` (the batches, newest first),
 * `start --dry-run` (which files are already recorded with the same bytes) and `report --export`
 * (each interaction's rule that failed and its send times). They read through the ledger's own
 * query layer and write nothing.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type ExpressionBuilder } from 'kysely';
import type { BatchState } from '../shared';
import type { BatchRow } from './port';
import type { LedgerDatabase } from './schema';
import { createSqlLedger, parseLedgerUrl, SQLITE_BUSY_TIMEOUT_MS, SqlLedger } from './sql-ledger';

/** How many values one `in (...)` list holds: well under SQLite's and PostgreSQL's parameter limits. */
const IN_LIST_CHUNK = 500;

function chunks<T>(values: readonly T[], size = IN_LIST_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}

/** Filters `interactions as i` to the latest interaction (highest seq) of each file of its batch. */
function latestOfItsFile({
  not,
  exists,
  selectFrom,
}: ExpressionBuilder<LedgerDatabase & { i: LedgerDatabase['interactions'] }, 'i'>) {
  return not(
    exists(
      selectFrom('interactions as later')
        .select('later.seq')
        .whereRef('later.batch_id', '=', 'i.batch_id')
        .whereRef('later.order_id', '=', 'i.order_id')
        .whereRef('later.file_name', '=', 'i.file_name')
        .whereRef('later.seq', '>', 'i.seq'),
    ),
  );
}

/**
 * The batches the ledger knows, newest first (by creation time, then id), optionally only those
 * in `state`, at most `limit` of them.
 */
export async function listBatches(
  ledger: SqlLedger,
  opts: { state?: BatchState; limit?: number } = {},
): Promise<BatchRow[]> {
  let query = ledger.db
    .selectFrom('sync_batches')
    .select([
      'batch_id',
      'workflow_id',
      'state',
      'total',
      'recorded',
      'rolled_back',
      'failed',
      'created_at',
      'finished_at',
    ]);
  if (opts.state !== undefined) query = query.where('state', '=', opts.state);
  query = query.orderBy('created_at', 'desc').orderBy('batch_id', 'desc');
  if (opts.limit !== undefined) query = query.limit(opts.limit);
  return query.execute();
}

export interface FileWithChecksum {
  target: string;
  orderId: string;
  fileName: string;
  sha256: string;
}

/** The key a file has in the set recordedWithSameChecksum returns. */
export function fileKey(f: FileWithChecksum): string {
  return `${f.target}\u0000${f.orderId}\u0000${f.fileName}\u0000${f.sha256}`;
}

/** Rows read per page when recordedWithSameChecksum scans the whole ledger. */
const SCAN_PAGE = 5000;

/**
 * Which of `files` the ledger already holds RECORDED with the same sha256, at the same target:
 * some batch's latest interaction for that order and file is RECORDED with that checksum.
 * Returns their fileKey()s.
 *
 * Up to `scanAbove` files (default 2,000) are looked up by checksum, 500 a query; more files are
 * matched in one pass over the ledger's RECORDED interactions, a page at a time by sequence
 * number, so a large input costs one read of the ledger rather than one per 500 files.
 */
export async function recordedWithSameChecksum(
  ledger: SqlLedger,
  files: readonly FileWithChecksum[],
  opts: { scanAbove?: number; pageSize?: number } = {},
): Promise<Set<string>> {
  const wanted = new Set(files.map(fileKey));
  const found = new Set<string>();
  const keep = (r: { target: string; order_id: string; file_name: string; sha256: string }) => {
    const key = fileKey({ target: r.target, orderId: r.order_id, fileName: r.file_name, sha256: r.sha256 });
    if (wanted.has(key)) found.add(key);
  };
  const recorded = () =>
    ledger.db
      .selectFrom('interactions as i')
      .select(['i.seq', 'i.target', 'i.order_id', 'i.file_name', 'i.sha256'])
      .where('i.status', '=', 'RECORDED')
      .where(latestOfItsFile);
  if (files.length <= (opts.scanAbove ?? 4 * IN_LIST_CHUNK)) {
    const checksums = [...new Set(files.map((f) => f.sha256))];
    for (const part of chunks(checksums)) {
      for (const r of await recorded().where('i.sha256', 'in', part).execute()) keep(r);
    }
    return found;
  }
  const pageSize = opts.pageSize ?? SCAN_PAGE;
  let after = 0;
  for (;;) {
    const page = await recorded().where('i.seq', '>', after).orderBy('i.seq').limit(pageSize).execute();
    for (const r of page) keep(r);
    if (page.length < pageSize) return found;
    after = page[page.length - 1]!.seq;
  }
}

/** What the event log says of one interaction, for a per-file report. */
export interface InteractionTrail {
  /**
   * What failed last: the rule of a VERIFY_FAILED event (`missing`, `size`, `checksum`,
   * `idempotency-key`), or `send` for a SEND_FAILED one (rejected, unavailable, ...: the
   * interaction's last_error says which); null when nothing failed.
   */
  failedRule: string | null;
  /** When the first send of the interaction was recorded (its first SENT or SEND_FAILED event). */
  firstSentAt: string | null;
  /** When the latest event of the interaction was written. */
  lastEventAt: string | null;
}

function ruleOf(detail: string | null): string | null {
  if (detail === null) return null;
  try {
    const parsed = JSON.parse(detail) as { rule?: unknown };
    return typeof parsed.rule === 'string' ? parsed.rule : null;
  } catch {
    return null;
  }
}

/** The trail of every interaction of a batch, by interaction id, from its events in the order written. */
export async function interactionTrails(ledger: SqlLedger, batchId: string): Promise<Map<string, InteractionTrail>> {
  const rows = await ledger.db
    .selectFrom('interaction_events as e')
    .innerJoin('interactions as i', 'i.interaction_id', 'e.interaction_id')
    .select(['e.interaction_id', 'e.kind', 'e.detail', 'e.at'])
    .where('i.batch_id', '=', batchId)
    .orderBy('e.id')
    .execute();
  const trails = new Map<string, InteractionTrail>();
  for (const r of rows) {
    let t = trails.get(r.interaction_id);
    if (!t) {
      t = { failedRule: null, firstSentAt: null, lastEventAt: null };
      trails.set(r.interaction_id, t);
    }
    if (r.kind === 'VERIFY_FAILED') t.failedRule = ruleOf(r.detail) ?? 'verify';
    if (r.kind === 'SEND_FAILED') t.failedRule = 'send';
    if ((r.kind === 'SENT' || r.kind === 'SEND_FAILED') && t.firstSentAt === null) t.firstSentAt = r.at;
    t.lastEventAt = r.at;
  }
  return trails;
}

/**
 * Opens the ledger at `url` to read only: a SQLite file read-only (undefined when the file does
 * not exist: a ledger never written holds nothing), PostgreSQL as it is. No migration runs and
 * no file or table is created.
 */
export function openLedgerToRead(url: string): SqlLedger | undefined {
  const location = parseLedgerUrl(url);
  if (location.dialect === 'postgres') return createSqlLedger(url);
  if (location.filename === ':memory:' || !existsSync(location.filename)) return undefined;
  const database = new Database(location.filename, { readonly: true, fileMustExist: true });
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  return new SqlLedger(new Kysely<LedgerDatabase>({ dialect: new SqliteDialect({ database }) }), 'sqlite');
}

/** Whether an error says the ledger's tables do not exist yet (a ledger no batch has used). */
export function isMissingTable(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /no such table|relation "[^"]*" does not exist/i.test(message);
}
