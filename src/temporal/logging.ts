/**
 * Logs of a process that runs workers: pino, as IMAGE_SYNC_LOG_FORMAT says (json, or text; by
 * default text on a terminal and json otherwise), with the SDK core's logs forwarded into it.
 * See src/observability/.
 */
import type { LogLevel } from '@temporalio/common';
import { appEnv } from '../config/env';
import { defaultLogFormat } from '../observability/logger';
import { installWorkerRuntime } from '../observability/runtime';

/** Installs the worker runtime's logging for this process (once). */
export function installWorkerLogging(level: LogLevel = appEnv().IMAGE_SYNC_LOG_LEVEL): void {
  installWorkerRuntime({ level, format: appEnv().IMAGE_SYNC_LOG_FORMAT ?? defaultLogFormat() });
}
