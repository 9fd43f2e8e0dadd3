/**
 * Free text that goes into the ledger (`last_error`, event `detail`, rollback `reason`) passes
 * through here. The ledger never stores credentials: anything that looks like a bearer token,
 * a credential-bearing key/value pair or a password in a URL is masked, and the text is capped
 * in length so one runaway error message cannot bloat the tables.
 */

/** Longest text kept in a ledger column, in characters. */
export const MAX_LEDGER_TEXT = 2000;

const TRUNCATION_MARK = '…[truncated]';
const REDACTED = '[redacted]';

/** `Bearer <token>` anywhere in the text (e.g. a copied Authorization header). */
const BEARER_TOKEN = /\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;
/** `user:password@` in a URL. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;
/**
 * `token=...`, `"apiKey": "..."`, `password: ...` and the like. The value is masked unless it is
 * already masked or is a `Bearer` scheme word (its token is handled by BEARER_TOKEN).
 */
const SECRET_PAIR =
  /\b((?:authorization|token|access[_-]?token|api[_-]?key|apikey|password|passwd|secret|client[_-]?secret)"?\s*[:=]\s*"?)(?!Bearer\b|\[redacted\])[^\s",;}&]+/gi;

/** Masks values that look like credentials. */
export function redactSecrets(text: string): string {
  return text
    .replace(BEARER_TOKEN, `$1${REDACTED}`)
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(SECRET_PAIR, `$1${REDACTED}`);
}

/** Cuts text to at most `max` characters, marking the cut. */
export function truncateText(text: string, max: number = MAX_LEDGER_TEXT): string {
  if (text.length <= max) return text;
  if (max <= TRUNCATION_MARK.length) return text.slice(0, max);
  return text.slice(0, max - TRUNCATION_MARK.length) + TRUNCATION_MARK;
}

/** Makes text fit for a ledger column: credentials masked, length capped. */
export function safeLedgerText(text: string, max?: number): string;
export function safeLedgerText(text: string | null | undefined, max?: number): string | null;
export function safeLedgerText(text: string | null | undefined, max: number = MAX_LEDGER_TEXT): string | null {
  if (text === null || text === undefined) return null;
  return truncateText(redactSecrets(text), max);
}

/**
 * Turns an event's detail into column text: strings are kept as they are, other values are
 * JSON-encoded (falling back to `String(value)` for values JSON cannot encode), absent is null.
 * The result passes through {@link safeLedgerText}.
 */
export function serializeDetail(detail: unknown, max: number = MAX_LEDGER_TEXT): string | null {
  if (detail === undefined || detail === null) return null;
  if (typeof detail === 'string') return safeLedgerText(detail, max);
  let text: string | undefined;
  try {
    text = JSON.stringify(detail);
  } catch {
    text = undefined;
  }
  return safeLedgerText(text ?? String(detail), max);
}
