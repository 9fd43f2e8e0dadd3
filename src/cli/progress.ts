/**
 * How a batch followed to its end shows its progress, on stderr (stdout keeps the result):
 * - on a terminal (stdout and stderr both one), a cli-progress bar redrawn in place, cut to the
 *   terminal's width, with files done / total, rate, ETA, failures, resends and state;
 * - otherwise (a pipe, a file, a CI log), one plain line at once and then one every interval
 *   (30 s unless `--progress-interval`), so logs stay short.
 */
import { SingleBar } from 'cli-progress';
import type { Progress } from '../shared';
import { parseIntOption } from './common';

export const DEFAULT_PROGRESS_INTERVAL_S = 30;

/** The `--progress-interval` option of a command that follows a batch with `follow` (--wait or --watch). */
export function progressIntervalOption(follow: '--wait' | '--watch'): [string, string, (raw: string) => number] {
  return [
    '--progress-interval <s>',
    `with ${follow} and no terminal: seconds between progress lines (default ${DEFAULT_PROGRESS_INTERVAL_S})`,
    parseIntOption('--progress-interval', 1, 86_400),
  ];
}

export interface ProgressDisplay {
  update(p: Progress, filesPerSecond: number): void;
  stop(): void;
}

export function doneOf(p: Pick<Progress, 'recorded' | 'rolledBack' | 'rollbackFailed' | 'cancelled'>): number {
  return p.recorded + p.rolledBack + p.rollbackFailed + p.cancelled;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function eta(p: Progress, filesPerSecond: number): string {
  return filesPerSecond > 0 ? formatSeconds(Math.ceil((p.total - doneOf(p)) / filesPerSecond)) : '?';
}

/** One plain line: done / total, share, rate, ETA, failures, resends, in flight, state. */
export function plainProgressLine(p: Progress, filesPerSecond: number): string {
  const done = doneOf(p);
  const share = p.total > 0 ? done / p.total : 1;
  return (
    `${done}/${p.total} files ${(share * 100).toFixed(0)}%  ${filesPerSecond.toFixed(1)} files/s  ETA ${eta(p, filesPerSecond)}` +
    `  failures ${p.rolledBack + p.rollbackFailed}  resends ${p.resends}  in flight ${p.inFlight}  ${p.state}`
  );
}

/** The width of the bar itself on a terminal of `columns`: what the counters leave, 10 to 40. */
export function barWidth(columns: number | undefined): number {
  return Math.max(10, Math.min(40, (columns ?? 80) - 80));
}

class BarDisplay implements ProgressDisplay {
  private readonly bar: SingleBar;
  private started = false;

  constructor(stream: NodeJS.WriteStream) {
    this.bar = new SingleBar({
      stream,
      format:
        '[{bar}] {value}/{total} files {percentage}% {rate} files/s ETA {etaText} failures {failures} resends {resends} in flight {inFlight} {state}',
      barsize: barWidth(stream.columns),
      barCompleteChar: '#',
      barIncompleteChar: '.',
      hideCursor: true,
      // cli-progress cuts each draw to the terminal's width when this is set (the name is its own).
      linewrap: true,
      fps: 5,
    });
  }

  update(p: Progress, filesPerSecond: number): void {
    const payload = {
      rate: filesPerSecond.toFixed(1),
      etaText: eta(p, filesPerSecond),
      failures: p.rolledBack + p.rollbackFailed,
      resends: p.resends,
      inFlight: p.inFlight,
      state: p.state,
    };
    if (!this.started) {
      this.bar.start(p.total, doneOf(p), payload);
      this.started = true;
    } else {
      this.bar.setTotal(p.total);
      this.bar.update(doneOf(p), payload);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

class PlainDisplay implements ProgressDisplay {
  private lastAt = -Infinity;
  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly intervalMs: number,
  ) {}

  update(p: Progress, filesPerSecond: number): void {
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    this.stream.write(`${new Date(now).toISOString()} ${plainProgressLine(p, filesPerSecond)}\n`);
  }

  stop(): void {}
}

const SILENT: ProgressDisplay = { update: () => undefined, stop: () => undefined };

/** The display for this process: a bar on a terminal, plain lines every interval otherwise. */
export function progressDisplay(opts: { quiet?: boolean; intervalSeconds?: number } = {}): ProgressDisplay {
  if (opts.quiet) return SILENT;
  if (process.stdout.isTTY && process.stderr.isTTY) return new BarDisplay(process.stderr);
  return new PlainDisplay(process.stderr, (opts.intervalSeconds ?? DEFAULT_PROGRESS_INTERVAL_S) * 1000);
}
