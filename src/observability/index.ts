/**
 * What a worker process sets up for operators, from the production settings: logs (format and
 * level), metrics (the ledger decorator, the activity interceptors, the runtime's exporter and
 * the /metrics and /health server).
 */
import type { LogLevel } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { TransferObserver } from '../activities';
import type { Ledger } from '../ledger/port';
import { freePort } from '../temporal/dev-server';
import { observabilityInterceptors } from './activity-interceptor';
import { defaultLogFormat, type LogFormat } from './logger';
import { meteredLedger } from './metered-ledger';
import { SyncMetrics } from './metrics';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { installWorkerRuntime } from './runtime';

export interface WorkerObservability {
  /** The ledger, counting outcomes when metrics are on. */
  wrapLedger(ledger: Ledger): Ledger;
  interceptors(resolveTarget: (target: string | undefined) => string): ActivityInterceptorsFactory[];
  /** Times the phases of a delivery into the send and verify histograms (when metrics are on). */
  transferObserver(): TransferObserver | undefined;
  /**
   * Starts /metrics and /health (when a metrics port is set), from the start of the start-up:
   * /health answers 503 with `health().status` until `health().ok`.
   */
  serve(health: () => { ok: boolean; status: string }): Promise<MetricsServer | undefined>;
  info(message: string, fields?: Record<string, unknown>): void;
  close(): Promise<void>;
}

export async function setUpWorkerObservability(opts: {
  level?: LogLevel;
  format?: LogFormat;
  metricsPort?: number;
}): Promise<WorkerObservability> {
  const metrics = opts.metricsPort !== undefined ? new SyncMetrics() : undefined;
  const corePort = metrics ? await freePort() : undefined;
  const runtime = installWorkerRuntime({
    level: opts.level ?? 'INFO',
    format: opts.format ?? defaultLogFormat(),
    corePrometheusAddress: corePort ? `127.0.0.1:${corePort}` : undefined,
  });
  let server: MetricsServer | undefined;
  return {
    wrapLedger: (ledger) => (metrics ? meteredLedger(ledger, metrics) : ledger),
    interceptors: (resolveTarget) => [observabilityInterceptors({ metrics, resolveTarget })],
    transferObserver: () =>
      metrics
        ? (phase, target, result, seconds) =>
            (phase === 'send' ? metrics.sendSeconds : metrics.verifySeconds).observe({ target, result }, seconds)
        : undefined,
    async serve(health) {
      if (!metrics || opts.metricsPort === undefined) return undefined;
      server = await startMetricsServer({
        port: opts.metricsPort,
        metrics,
        runtimeMetricsUrl: runtime.corePrometheusAddress
          ? `http://${runtime.corePrometheusAddress}/metrics`
          : undefined,
        health,
      });
      return server;
    },
    info: (message, fields) => runtime.logger.info(message, fields),
    close: async () => {
      await server?.close();
    },
  };
}
