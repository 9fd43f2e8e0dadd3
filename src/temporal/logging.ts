/**
 * Logs of a process that runs workers: pino, as IMAGE_SYNC_LOG_FORMAT says (json, or text; by
 * default text on a terminal and json otherwise), with the SDK core's logs forwarded into it.
 * See src/observability/.
 */
import type { LogLevel } from '@temporalio/common';
import { parseProductionEnv } from '../config/production-env';
import { defaultLogFormat } from '../observability/logger';
import { installWorkerRuntime } from '../observability/runtime';

/** Installs the worker runtime's logging for this process (once). */
export function installWorkerLogging(
  level: LogLevel = (process.env.IMAGE_SYNC_LOG_LEVEL as LogLevel | undefined) ?? 'INFO',
): void {
  installWorkerRuntime({ level, format: parseProductionEnv().IMAGE_SYNC_LOG_FORMAT ?? defaultLogFormat() });
}
