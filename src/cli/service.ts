/**
 * The start-up of a long-running command (the worker): it never hangs. Each dependency the
 * service needs (the ledger, Temporal) is reached with retries and backoff, every failed attempt
 * logged with its reason; the whole start-up is bounded (IMAGE_SYNC_STARTUP_TIMEOUT_MS), after
 * which the process exits 1 with one line naming what stayed unreachable; a bad configuration
 * exits 2 at once, without retries; a stop signal ends the start-up at any point.
 *
 * The lines it writes go to stdout: plain text, or in JSON mode one JSON object a line, like
 * every other log line of the process.
 */
import { errorText } from '../errors';
import type { Ledger } from '../ledger/port';
import type { LogFormat } from '../observability/logger';

export type LineLevel = 'info' | 'warn' | 'error';

/** Lifecycle lines on stdout (and the final error on stderr), in the process's log format. */
export interface ServiceLog {
  readonly format: LogFormat;
  line(level: LineLevel, message: string, fields?: Record<string, unknown>): void;
}

export function serviceLog(format: LogFormat, service = 'image-sync'): ServiceLog {
  return {
    format,
    line(level, message, fields = {}) {
      const stream = level === 'error' ? process.stderr : process.stdout;
      if (format === 'json') {
        const record = { level, time: new Date().toISOString(), service, pid: process.pid, msg: message, ...fields };
        stream.write(`${JSON.stringify(record)}\n`);
      } else {
        stream.write(level === 'error' ? `image-sync: ${message}\n` : `${message}\n`);
      }
    },
  };
}

/** A configuration the service cannot start with: exit 2, no retry. */
export class StartupConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'StartupConfigError';
  }
}

/** A dependency still unreachable when the start-up's time ran out: exit 1. */
export class StartupTimeoutError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'StartupTimeoutError';
  }
}

/** The start-up was ended by a stop signal; not a failure. */
export class StartupAborted extends Error {
  constructor(readonly reason: string) {
    super(`start-up stopped: ${reason}`);
    this.name = 'StartupAborted';
  }
}

export const STARTUP_BACKOFF = { initialMs: 500, maxMs: 5_000 };

/** How a start-up proceeds: its deadline, its log, and whether it was asked to stop. */
export class Startup {
  private readonly deadline: number;
  private readonly aborter = new AbortController();
  private stopReason: string | undefined;
  private phase = 'starting';

  constructor(
    readonly timeoutMs: number,
    private readonly log: ServiceLog,
    private readonly backoff = STARTUP_BACKOFF,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  /** What /health says while the service is not yet serving. */
  get status(): string {
    return this.phase;
  }

  get stopped(): boolean {
    return this.stopReason !== undefined;
  }

  /** Ends the start-up: the retry or attempt in progress gives up at once. */
  stop(reason: string): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.aborter.abort(new StartupAborted(reason));
  }

  /** Rejects when a stop is asked for. */
  private whenStopped(): Promise<never> {
    return new Promise<never>((_, reject) => {
      const signal = this.aborter.signal;
      if (signal.aborted) reject(signal.reason as Error);
      else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }

  /**
   * One step that is not retried (bundling the workflows, creating the worker), ended early by
   * a stop. `dispose` releases what the step made, should it finish after a stop.
   */
  async step<T>(what: string, run: () => Promise<T>, dispose?: (value: T) => Promise<void> | void): Promise<T> {
    this.phase = `starting: ${what}`;
    return this.stoppable(run, dispose);
  }

  private async stoppable<T>(run: () => Promise<T>, dispose?: (value: T) => Promise<void> | void): Promise<T> {
    if (this.stopReason !== undefined) throw new StartupAborted(this.stopReason);
    const running = run();
    try {
      return await Promise.race([running, this.whenStopped()]);
    } catch (err) {
      if (err instanceof StartupAborted && dispose) {
        void running.then(dispose, () => undefined);
      }
      throw err;
    }
  }

  /**
   * Reaches a dependency: `attempt` runs until it succeeds, with backoff between attempts, each
   * failure logged; the attempts end with {@link StartupTimeoutError} at the deadline, with
   * {@link StartupAborted} on a stop, or with the error itself when `isFatal` says so.
   */
  async reach<T>(
    what: string,
    attempt: () => Promise<T>,
    opts: { dispose?: (value: T) => Promise<void> | void; isFatal?: (err: unknown) => boolean } = {},
  ): Promise<T> {
    let delay = this.backoff.initialMs;
    for (let n = 1; ; n++) {
      this.phase = `starting: waiting for ${what}`;
      let lastError: unknown;
      try {
        return await this.withDeadline(what, this.stoppable(attempt, opts.dispose));
      } catch (err) {
        if (err instanceof StartupAborted || err instanceof StartupTimeoutError) throw err;
        if (opts.isFatal?.(err)) throw err;
        lastError = err;
      }
      const left = this.deadline - Date.now();
      if (left <= 0) throw this.timeout(what, lastError);
      const wait = Math.min(delay, left);
      this.log.line('warn', `${what} unreachable (attempt ${n}): ${errorText(lastError)}; retrying in ${wait} ms`, {
        dependency: what,
        attempt: n,
        retryInMs: wait,
        err: errorText(lastError),
      });
      await this.sleep(wait);
      if (Date.now() >= this.deadline) throw this.timeout(what, lastError);
      delay = Math.min(delay * 2, this.backoff.maxMs);
    }
  }

  private timeout(what: string, lastError: unknown): StartupTimeoutError {
    const reason = lastError === undefined ? 'no answer' : errorText(lastError);
    return new StartupTimeoutError(
      `${what} unreachable: not started within ${this.timeoutMs} ms (IMAGE_SYNC_STARTUP_TIMEOUT_MS): ${reason}`,
    );
  }

  /** An attempt still pending at the deadline counts as failed. */
  private withDeadline<T>(what: string, attempt: Promise<T>): Promise<T> {
    const left = this.deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.timeout(what, new Error('no answer before the deadline'))),
        Math.max(0, left),
      );
    });
    return Promise.race([attempt, late]).finally(() => clearTimeout(timer));
  }

  private async sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), this.whenStopped()]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The start-up is over: the service serves. */
  serving(): void {
    this.phase = 'serving';
  }
}

/** The exit code of a start-up or run that ended with `err`. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof StartupAborted) return 0;
  const code = (err as { exitCode?: unknown } | undefined)?.exitCode;
  return typeof code === 'number' ? code : 1;
}

/**
 * Waits for the first of `others` to settle, or for the ledger to be lost (Ledger.lost: it can no
 * longer vouch for its writes), whichever comes first: a service stops on either. Says which:
 * `{ value }` from one of `others`, or `{ lost }` with the ledger's error. A rejection of one of
 * `others` rejects.
 */
export function untilSettledOrLedgerLost<T>(
  ledger: Pick<Ledger, 'lost'>,
  others: Promise<T>[],
): Promise<{ value: T; lost?: undefined } | { value?: undefined; lost: Error }> {
  return Promise.race([
    ...others.map((p) => p.then((value) => ({ value }))),
    ...(ledger.lost ? [ledger.lost.then((lost) => ({ lost }))] : []),
  ]);
}
