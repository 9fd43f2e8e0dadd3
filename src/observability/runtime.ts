/**
 * The Temporal runtime of a worker process, installed once before any connection: the pino
 * logger for the SDK's, the workflows', the activities' and (forwarded) the SDK core's logs, and,
 * when metrics are on, the runtime's Prometheus exporter for the SDK's `temporal_*` metrics and
 * the workflows' own metrics (bound to loopback; the metrics server re-serves it).
 */
import type { LogLevel } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { createPinoLogger, PinoTemporalLogger, type LogFormat } from './logger';

export interface WorkerRuntimeOptions {
  level: LogLevel;
  format: LogFormat;
  /** host:port for the runtime's Prometheus exporter; none: no SDK metrics. */
  corePrometheusAddress?: string;
}

let installed: (WorkerRuntimeOptions & { logger: PinoTemporalLogger }) | undefined;

/** Installs the runtime (once per process; later calls return the first installation). */
export function installWorkerRuntime(
  opts: WorkerRuntimeOptions,
): WorkerRuntimeOptions & { logger: PinoTemporalLogger } {
  if (installed) return installed;
  const logger = new PinoTemporalLogger(createPinoLogger(opts.format, opts.level));
  // Core's INFO and DEBUG lines are about its own machinery; WARN and up matter to an operator
  // unless more is asked for.
  const coreLevel: LogLevel = opts.level === 'TRACE' || opts.level === 'DEBUG' ? opts.level : 'WARN';
  Runtime.install({
    logger,
    // The process handles its stop signals itself (src/cli/commands/worker.ts), at every point of
    // its start-up too; the SDK's own handlers would swallow a SIGTERM before a worker exists.
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: { core: coreLevel, other: 'ERROR' }, forward: {} },
      ...(opts.corePrometheusAddress ? { metrics: { prometheus: { bindAddress: opts.corePrometheusAddress } } } : {}),
    },
  });
  installed = { ...opts, logger };
  return installed;
}
