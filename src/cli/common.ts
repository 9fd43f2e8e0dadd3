/** What every CLI command shares: errors as one line, JSON output, connections, lifetimes. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { ConfigError } from '../config/production-env';
import { errorText } from '../errors';
import {
  describeLedgerLocation,
  isMissingTable,
  ledgerUrlFromEnv,
  openLedger,
  openLedgerToRead,
  parseLedgerUrl,
  type Ledger,
} from '../ledger';
import { connectClient, TemporalUnreachableError } from '../temporal/connection';
import { isGrpcServiceError } from '@temporalio/client';
import { InvalidArgumentError } from 'commander';
import { POLICY_BOUNDS, policyBoundsText, policyHelp, withinPolicyBounds } from '../config/policy-bounds';
import type { BoundedPolicyField } from '../config/policy-bounds';
import { appEnv } from '../config/env';
import type { NotifyOptions } from '../shared';

/**
 * What went wrong, as a word scripts can test in a `--json` error document (see
 * docs/reference/exit-codes.md); the exit code stays the coarse answer.
 */
export type ErrorCode =
  | 'usage'
  | 'bad_config'
  | 'invalid_input'
  | 'bad_input'
  | 'refused'
  | 'unknown_batch'
  | 'unknown_schedule'
  | 'no_ledger'
  | 'batch_ended'
  | 'already_exists'
  | 'not_confirmed'
  | 'no_worker'
  | 'temporal_unreachable'
  | 'not_found'
  | 'failed';

/** An error the user can act on: printed as one line, exit code 1 (or `exitCode`). */
export class CliError extends Error {
  readonly code: ErrorCode;
  /** More for the `--json` error document (for example the invalid lines of a manifest). */
  readonly details?: Record<string, unknown>;

  constructor(
    message: string,
    readonly exitCode = 1,
    opts: { code?: ErrorCode; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'CliError';
    this.code = opts.code ?? (exitCode === 2 ? 'bad_input' : exitCode === 3 ? 'not_found' : 'failed');
    this.details = opts.details;
  }
}

/** gRPC's status code UNAVAILABLE: the server could not be reached. */
const GRPC_UNAVAILABLE = 14;

/** The exit code and error code of any error a command ends with. */
export function classifyError(err: unknown): { exitCode: number; code: ErrorCode } {
  if (err instanceof CliError) return { exitCode: err.exitCode, code: err.code };
  if (err instanceof ConfigError) return { exitCode: err.exitCode, code: 'bad_config' };
  if (err instanceof TemporalUnreachableError || (isGrpcServiceError(err) && err.code === GRPC_UNAVAILABLE))
    return { exitCode: 1, code: 'temporal_unreachable' };
  return { exitCode: 1, code: 'failed' };
}

/** The `--json` form of an error: one document, `{ "error": { "code", "message", "exitCode", ... } }`. */
export function errorDocument(
  err: unknown,
  c: { exitCode: number; code: ErrorCode } = classifyError(err),
): { error: Record<string, unknown> } {
  const details = err instanceof CliError ? err.details : undefined;
  return { error: { code: c.code, message: errorText(err), exitCode: c.exitCode, ...details } };
}

/**
 * Reports the error a command ends with: always one line on stderr; with `json`, also the error
 * document on stdout, where a script reads the command's JSON. Returns the exit code.
 */
export function reportError(err: unknown, json: boolean, c = classifyError(err)): number {
  process.stderr.write(`image-sync: ${errorText(err)}\n`);
  if (json) printJson(errorDocument(err, c));
  return c.exitCode;
}

/** Whether a command line asks for JSON output (`--json` before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function parseIntOption(name: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A rate limit: a positive number (with `allowZero`, 0 lifts the limit). */
export function parseLimitOption(name: string, allowZero = false) {
  return (raw: string): number => {
    const n = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero))
      throw new InvalidArgumentError(
        `${name} must be a ${allowZero ? 'number of 0 (no limit) or more' : 'positive number'}`,
      );
    return n;
  };
}

/** Collects a repeatable URL option; only http:// and https:// URLs are taken. */
export function collectUrl(name: string) {
  return (raw: string, previous: string[] = []): string[] => {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      throw new InvalidArgumentError(`${name} must be an http:// or https:// URL`);
    return [...previous, raw];
  };
}

/**
 * Where a batch POSTs its events: the command's `--notify` URLs and IMAGE_SYNC_NOTIFY_URLS, with
 * IMAGE_SYNC_NOTIFY_TIMEOUT_MS; undefined when there is none.
 */
export function notifyOptions(urls: string[] = []): NotifyOptions | undefined {
  const env = appEnv();
  const all = [...new Set([...urls, ...env.IMAGE_SYNC_NOTIFY_URLS])];
  return all.length > 0 ? { urls: all, timeoutMs: env.IMAGE_SYNC_NOTIFY_TIMEOUT_MS } : undefined;
}

/** Parses a policy value against its bounds (src/config/policy-bounds.ts); `name` is the flag or argument. */
export function parsePolicyValue(field: BoundedPolicyField, name: string = POLICY_BOUNDS[field].flag) {
  return (raw: string): number => {
    const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!withinPolicyBounds(field, n)) throw new InvalidArgumentError(`${name} must be ${policyBoundsText(field)}`);
    return n;
  };
}

/**
 * A policy option for commander: its flag with a value placeholder, its help with the default
 * and range, and its parser, from one definition. `help` replaces the standard meaning.
 */
export function policyOption(
  field: BoundedPolicyField,
  placeholder: string,
  help?: string,
): [string, string, (raw: string) => number] {
  const b = POLICY_BOUNDS[field];
  const text = help ? `${help} (default ${b.default}; ${b.min} to ${b.max})` : policyHelp(field);
  return [`${b.flag} <${placeholder}>`, text, parsePolicyValue(field)];
}

/** Adds the `--port` and `--host` options of a command that serves HTTP. */
export function listenOptions(command: Command, defaultPort: number): Command {
  return command
    .option('--port <port>', 'port to listen on (0 picks one)', parseIntOption('--port', 0, 65535), defaultPort)
    .option('--host <host>', 'address to bind', '127.0.0.1');
}

export function parseRateOption(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 1)
      throw new InvalidArgumentError(`${name} must be a probability from 0 to 1`);
    return n;
  };
}

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
export function untilStopped(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Wraps an action so any failure ends the process with a one-line reason, and, when the command
 * was given `--json`, with the error document on stdout too.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      // commander passes the command last: its options say whether JSON was asked for.
      const command = args[args.length - 1] as Partial<Command> | undefined;
      const json = typeof command?.opts === 'function' && command.opts().json === true;
      process.exitCode = reportError(err, json);
    }
  };
}

export type Register = (program: Command) => void;

/** Runs fn with a Temporal client, closing the connection afterwards. */
export async function withClient(fn: (client: Client) => Promise<void>): Promise<void> {
  const { client, connection } = await connectClient();
  try {
    await fn(client);
  } finally {
    await connection.close();
  }
}

/** The ledger IMAGE_SYNC_LEDGER_URL names, as messages show it (never its password). */
export function ledgerName(): string {
  return describeLedgerLocation(parseLedgerUrl(ledgerUrlFromEnv()));
}

/** Why there is nothing to read: no ledger where IMAGE_SYNC_LEDGER_URL points, and how to point elsewhere. */
export function noLedgerText(): string {
  return `there is no ledger at ${ledgerName()} (IMAGE_SYNC_LEDGER_URL; its default is relative to the folder batches were started from)`;
}

/** A command that reads the ledger found none: exit 3, naming where it looked. */
function noLedger(): CliError {
  return new CliError(noLedgerText(), 3, { code: 'no_ledger' });
}

/** Runs fn with the ledger IMAGE_SYNC_LEDGER_URL names, closing it afterwards. */
export async function withLedger<T>(fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const ledger = await openLedger(ledgerUrlFromEnv());
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}

/**
 * Runs fn with the ledger opened to read only: reading creates no file, table or migration. A
 * SQLite ledger that does not exist, or a ledger whose tables no batch has created, throws
 * `missing()` (by default: exit 3, naming where it looked).
 */
export async function withLedgerToRead<T>(
  fn: (ledger: Ledger) => Promise<T>,
  missing: () => Error = noLedger,
): Promise<T> {
  const ledger = openLedgerToRead(ledgerUrlFromEnv());
  if (!ledger) throw missing();
  try {
    return await fn(ledger);
  } catch (err) {
    if (isMissingTable(err)) throw missing();
    throw err;
  } finally {
    await ledger.close();
  }
}

/** Runs fn with the ledger opened to write, refusing to create a SQLite ledger that does not exist. */
export async function withExistingLedger<T>(
  fn: (ledger: Ledger) => Promise<T>,
  missing: () => Error = noLedger,
): Promise<T> {
  const probe = openLedgerToRead(ledgerUrlFromEnv());
  if (!probe) throw missing();
  await probe.close();
  return withLedger(fn);
}
