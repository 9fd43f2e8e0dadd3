/**
 * The intake server's own Prometheus metrics (a registry of its own, served on the metrics port
 * like the worker's: src/observability/metrics-server.ts). Names and labels are a contract for
 * dashboards: docs/reference/metrics.md lists them.
 */
import { Counter, Histogram, Registry } from 'prom-client';

const HELP = {
  image_sync_intake_requests_total:
    'Requests the intake server answered, by route (submit, order, file, openapi, health, other) and status code',
  image_sync_intake_request_seconds: 'Time to answer one intake request, by route',
  image_sync_intake_files_accepted_total:
    'Files in submissions the intake took (202), not counting replays of a key already taken',
} as const;

export type IntakeRoute = 'submit' | 'order' | 'file' | 'openapi' | 'health' | 'other';

export class IntakeMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'image_sync_intake_requests_total',
    help: HELP.image_sync_intake_requests_total,
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'image_sync_intake_request_seconds',
    help: HELP.image_sync_intake_request_seconds,
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly filesAccepted = new Counter({
    name: 'image_sync_intake_files_accepted_total',
    help: HELP.image_sync_intake_files_accepted_total,
    registers: [this.registry],
  });

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
