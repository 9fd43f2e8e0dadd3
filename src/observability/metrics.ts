/**
 * image-sync's own Prometheus metrics (prom-client, a registry of its own). Names and labels
 * are a contract for dashboards and alerts: see README, "Metrics".
 */
import { Counter, Histogram, Registry } from 'prom-client';

/** Send and verify latencies, in seconds: from a small upload on a LAN to a large one far away. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class SyncMetrics {
  readonly registry = new Registry();

  readonly filesFinished = new Counter({
    name: 'image_sync_files_finished_total',
    help: 'Files whose interaction reached an end state, by outcome (RECORDED, ROLLED_BACK, ROLLBACK_FAILED, CANCELLED) and target',
    labelNames: ['outcome', 'target'] as const,
    registers: [this.registry],
  });

  readonly bytesSent = new Counter({
    name: 'image_sync_bytes_sent_total',
    help: 'Bytes the recording systems acknowledged (every send, resends included), by target',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly sendSeconds = new Histogram({
    name: 'image_sync_send_seconds',
    help: 'Time to send one file to its recording system (one attempt), by target and result (ok, error)',
    labelNames: ['target', 'result'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly verifySeconds = new Histogram({
    name: 'image_sync_verify_seconds',
    help: "Time to check one file's receipt against the preset rules, by target and result (ok, failed, error)",
    labelNames: ['target', 'result'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly resends = new Counter({
    name: 'image_sync_resends_total',
    help: 'Files queued for a resend after a failed verification or send, by target',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly rollbacks = new Counter({
    name: 'image_sync_rollbacks_total',
    help: 'Rollbacks that ended, by target and status (DONE, FAILED)',
    labelNames: ['target', 'status'] as const,
    registers: [this.registry],
  });

  readonly verificationFailures = new Counter({
    name: 'image_sync_verification_failures_total',
    help: 'Receipts that failed a preset rule (missing, size, checksum, idempotency-key), by rule and target',
    labelNames: ['rule', 'target'] as const,
    registers: [this.registry],
  });

  /** Prometheus text of these metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
