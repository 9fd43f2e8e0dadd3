/**
 * One-line logs for the worker process. The SDK's default logger prints whole error objects with
 * stacks for every failed activity attempt, which buries what an operator needs: which activity,
 * which file, what went wrong.
 */
import { appEnv } from '../config/env';
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const type = (error as { type?: string }).type;
    return type ? `${type}: ${error.message}` : error.message;
  }
  return String(error);
}

export function formatLogEntry(entry: LogEntry): string {
  const meta = entry.meta ?? {};
  const parts = [
    new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    entry.level.padEnd(5),
    entry.message,
  ];
  for (const key of ['workflowType', 'activityType', 'workflowId', 'attempt', 'taskQueue', 'state'] as const) {
    if (meta[key] !== undefined) parts.push(`${key}=${String(meta[key])}`);
  }
  if (meta.error !== undefined) parts.push(`error="${errorText(meta.error)}"`);
  return parts.join(' ');
}

let installed = false;

/** Installs the one-line logger for this process (once). */
export function installWorkerLogging(level: LogLevel = appEnv().IMAGE_SYNC_LOG_LEVEL): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => process.stderr.write(`${formatLogEntry(entry)}\n`)),
  });
}
