/**
 * Worker logs through pino: with IMAGE_SYNC_LOG_FORMAT=json one JSON object a line on stderr,
 * with every field the SDK and image-sync attach (workflow id, run id, activity type, attempt,
 * target, batch id, ...); with `text`, pino-pretty's one-line readable form. The SDK core's own
 * logs are forwarded into the same logger (see installWorkerRuntime).
 */
import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';
import pino from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'text';

/** Text on a terminal, JSON otherwise (a container, a file, a log collector). */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY ? 'text' : 'json';
}

const PINO_LEVEL: Record<LogLevel, pino.Level> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** A pino logger writing to `fd` (stderr by default) in the given format. */
export function createPinoLogger(format: LogFormat, level: LogLevel, fd = 2): pino.Logger {
  const options: pino.LoggerOptions = {
    level: PINO_LEVEL[level],
    base: { service: 'image-sync', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  if (format === 'json') return pino(options, pino.destination({ fd, sync: true }));
  return pino(
    options,
    pretty({
      destination: fd,
      sync: true,
      colorize: fd === 2 ? Boolean(process.stderr.isTTY) : false,
      singleLine: true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    }),
  );
}

/** The batch id in a workflow id of the design (`sync-batch/<batchId>[/<orderId>/<fileName>]`). */
export function batchIdOfWorkflowId(workflowId: unknown): string | undefined {
  if (typeof workflowId !== 'string' || !workflowId.startsWith('sync-batch/')) return undefined;
  return workflowId.split('/')[1] || undefined;
}

/**
 * The SDK's log metadata as flat fields: `runId` for workflow and activity logs alike, `err` for
 * errors, `batchId` from the workflow id, and the core's Rust `target` as `module`.
 */
export function logFields(meta: LogMetadata | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta ?? {})) {
    if (value === undefined) continue;
    if (key === 'error' || key === 'err' || key === 'failure') {
      fields.err = value instanceof Error ? value : { message: String(value) };
    } else {
      fields[key] = value;
    }
  }
  // The SDK core names the Rust module that logged `target`; image-sync's `target` is a recording system.
  if (fields.sdkComponent === 'core' && fields.target !== undefined) {
    fields.module = fields.target;
    delete fields.target;
  }
  if (fields.runId === undefined && fields.workflowRunId !== undefined) fields.runId = fields.workflowRunId;
  fields.batchId ??= batchIdOfWorkflowId(fields.workflowId);
  if (fields.batchId === undefined) delete fields.batchId;
  return fields;
}

/** The SDK's Logger interface over pino: the Runtime's logger for SDK, workflow, activity and core logs. */
export class PinoTemporalLogger implements Logger {
  constructor(readonly pino: pino.Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.pino[PINO_LEVEL[level]](logFields(meta), message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
