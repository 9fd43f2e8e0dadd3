/**
 * image-sync's own Prometheus metrics (prom-client, a registry of its own). Names and labels
 * are a contract for dashboards and alerts: see docs/reference/metrics.md.
 */
import { Counter, Histogram, Registry } from 'prom-client';

/** Send and verify latencies, in seconds: from a small upload on a LAN to a large one far away. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What each metric counts or times, by which labels: its help text on /metrics. */
const HELP = {
  image_sync_files_finished_total:
    'Files whose interaction reached an end state, by outcome (RECORDED, ROLLED_BACK, ROLLBACK_FAILED, CANCELLED) and target',
  image_sync_bytes_sent_total: 'Bytes the recording systems acknowledged (every send, resends included), by target',
  image_sync_send_seconds:
    'Time to send one file to its recording system (one attempt), by target and result (ok, error)',
  image_sync_verify_seconds:
    "Time to check one file's receipt against the preset rules, by target and result (ok, failed, error)",
  image_sync_resends_total: 'Files queued for a resend after a failed verification or send, by target',
  image_sync_rollbacks_total: 'Rollbacks that ended, by target and status (DONE, FAILED)',
  image_sync_verification_failures_total:
    'Receipts that failed a preset rule (missing, size, checksum, idempotency-key), by rule and target',
} as const;
type MetricName = keyof typeof HELP;

export class SyncMetrics {
  readonly registry = new Registry();

  readonly filesFinished = this.#counter('image_sync_files_finished_total', ['outcome', 'target']);
  readonly bytesSent = this.#counter('image_sync_bytes_sent_total', ['target']);
  readonly sendSeconds = this.#latency('image_sync_send_seconds');
  readonly verifySeconds = this.#latency('image_sync_verify_seconds');
  readonly resends = this.#counter('image_sync_resends_total', ['target']);
  readonly rollbacks = this.#counter('image_sync_rollbacks_total', ['target', 'status']);
  readonly verificationFailures = this.#counter('image_sync_verification_failures_total', ['rule', 'target']);

  /** Prometheus text of these metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  #counter<L extends string>(name: MetricName, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name, help: HELP[name], labelNames, registers: [this.registry] });
  }

  /** A latency histogram, by target and result. */
  #latency(name: MetricName): Histogram<'target' | 'result'> {
    return new Histogram({
      name,
      help: HELP[name],
      labelNames: ['target', 'result'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
  }
}
