/**
 * The worker as an operator runs it (`image-sync worker`, a process of its own) with
 * IMAGE_SYNC_LOG_FORMAT=json, IMAGE_SYNC_METRICS_PORT and IMAGE_SYNC_ENCRYPTION_KEYS: a small
 * faulty batch runs through it, then /metrics is scraped and its counts checked against the
 * batch's result and the ledger, and the logs are read as JSON lines.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BatchResult, SyncItem } from '../../src/shared';
import { freePort } from '../../src/temporal/dev-server';
import { cliEnv, spawnCli, stopAllClis, tempDir, type CliProcess } from '../cli/helpers';
import { startHarness, TEST_ENCRYPTION_KEYS_ENV, TEST_TOKEN, type Harness } from '../helpers/harness';
import { waitFor } from '../helpers/wait';

/** One Prometheus sample: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('image-sync worker in production settings: metrics, health and JSON logs', () => {
  let h: Harness;
  let worker: CliProcess;
  let metricsUrl: string;
  let items: SyncItem[];
  let batchId: string;
  let result: BatchResult;
  let healthWhileRunning: number;

  beforeAll(async () => {
    // Drops are caught by verification and resent; rejections are rolled back.
    h = await startHarness({ simulator: { dropRate: 0.25, rejectRate: 0.15, seed: 5 } });
    await h.stopWorker(); // the batch runs in the worker process below, not in this one
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}`;
    worker = spawnCli(['worker'], {
      env: cliEnv(await tempDir('worker-home'), {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        IMAGE_SYNC_TASK_QUEUE: h.taskQueue,
        IMAGE_SYNC_LEDGER_URL: h.ledgerUrl,
        RECORDING_SYSTEM_URL: h.simulator.url,
        RECORDING_SYSTEM_TOKEN: TEST_TOKEN,
        IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV,
        IMAGE_SYNC_LOG_FORMAT: 'json',
        IMAGE_SYNC_LOG_LEVEL: 'DEBUG',
        IMAGE_SYNC_METRICS_PORT: String(port),
      }),
      cwd: h.workDir,
    });
    await worker.waitForStdout(/Worker polling task queue/, 120_000);
    healthWhileRunning = await waitFor('the worker to report healthy', async () => {
      const res = await fetch(`${metricsUrl}/health`).catch(() => undefined);
      return res?.status === 200 ? 200 : undefined;
    });
    items = await h.makeFiles(12, 1500, 4);
    const started = await h.start(items, { maxConcurrency: 6, maxResends: 3 });
    batchId = started.batchId;
    result = await started.handle.result();
  });

  afterAll(async () => {
    await stopAllClis();
    await h?.close();
  });

  it('GET /health answers 200 while the worker polls; the faulty batch resends and rolls back', () => {
    expect(healthWhileRunning).toBe(200);
    expect(result.recorded + result.rolledBack).toBe(items.length);
    expect(result.resends, 'the faults made resends').toBeGreaterThan(0);
    expect(result.rolledBack, 'the faults made rollbacks').toBeGreaterThan(0);
  });

  it("GET /metrics counts what the batch did, as the result and the ledger say, next to the SDK's metrics", async () => {
    const res = await fetch(`${metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const samples = parsePrometheus(text);
    const target = { target: 'default' };

    expect(total(samples, 'image_sync_files_finished_total', { ...target, outcome: 'RECORDED' })).toBe(result.recorded);
    expect(total(samples, 'image_sync_files_finished_total', { ...target, outcome: 'ROLLED_BACK' })).toBe(
      result.rolledBack,
    );
    expect(total(samples, 'image_sync_files_finished_total', { outcome: 'ROLLBACK_FAILED' })).toBe(0);
    expect(total(samples, 'image_sync_resends_total', target)).toBe(result.resends);
    expect(total(samples, 'image_sync_rollbacks_total', { ...target, status: 'DONE' })).toBe(result.rolledBack);

    // Bytes and verification failures, against the ledger's event log.
    const events = (
      await Promise.all((await h.ledger.listInteractions(batchId)).map((i) => h.ledger.listEvents(i.interaction_id)))
    ).flat();
    const detail = (e: { detail: string | null }) => JSON.parse(e.detail ?? '{}') as Record<string, unknown>;
    const sent = events.filter((e) => e.kind === 'SENT');
    const sentBytes = sent.reduce((sum, e) => sum + Number(detail(e).size), 0);
    expect(sentBytes).toBeGreaterThan(0);
    expect(total(samples, 'image_sync_bytes_sent_total', target)).toBe(sentBytes);
    const failedRules = new Map<string, number>();
    for (const e of events.filter((x) => x.kind === 'VERIFY_FAILED')) {
      const rule = String(detail(e).rule);
      failedRules.set(rule, (failedRules.get(rule) ?? 0) + 1);
    }
    expect(failedRules.size).toBeGreaterThan(0);
    for (const [rule, count] of failedRules) {
      expect(total(samples, 'image_sync_verification_failures_total', { ...target, rule }), rule).toBe(count);
    }
    expect(total(samples, 'image_sync_verification_failures_total')).toBe(
      [...failedRules.values()].reduce((a, b) => a + b, 0),
    );

    // Latency histograms: one observation per send attempt that reached the recording system or
    // failed, one per verification.
    const verifications = events.filter((e) => e.kind === 'VERIFIED' || e.kind === 'VERIFY_FAILED').length;
    expect(total(samples, 'image_sync_verify_seconds_count', target)).toBe(verifications);
    expect(total(samples, 'image_sync_verify_seconds_count', { ...target, result: 'failed' })).toBe(
      total(samples, 'image_sync_verification_failures_total'),
    );
    expect(total(samples, 'image_sync_send_seconds_count', { ...target, result: 'ok' })).toBe(sent.length);
    expect(total(samples, 'image_sync_send_seconds_sum', target)).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === 'image_sync_send_seconds_bucket' && s.labels.le === '+Inf')).toBe(true);

    // The SDK's own metrics, from the Temporal runtime's exporter.
    expect(total(samples, 'temporal_worker_task_slots_available', { task_queue: h.taskQueue })).toBeGreaterThan(0);
    expect(samples.some((s) => s.name.startsWith('temporal_workflow_completed'))).toBe(true);
    for (const name of new Set(samples.map((s) => s.name))) expect(name).toMatch(/^(image_sync|temporal)_/);
  });

  it('other paths answer 404', async () => {
    expect((await fetch(`${metricsUrl}/nothing`)).status).toBe(404);
  });

  it('logs one JSON object a line, with workflow id, run id, activity type, attempt, target and batch id, and the SDK core logs', () => {
    const lines = worker.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    const records = lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
    for (const r of records) {
      expect(typeof r.msg, JSON.stringify(r)).toBe('string');
      expect(['trace', 'debug', 'info', 'warn', 'error']).toContain(r.level);
      expect(typeof r.time).toBe('string');
    }
    // The SDK's line for each finished activity, with the fields image-sync adds.
    const activityLine = records.find(
      (r) => r.activityType === 'deliverFile' && r.msg === 'Activity completed' && r.batchId === batchId,
    );
    expect(activityLine, 'a deliverFile log line of the batch').toBeDefined();
    expect(activityLine).toMatchObject({ target: 'default', batchId, workflowType: 'syncFile', attempt: 1 });
    expect(activityLine!.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(String(activityLine!.workflowId)).toMatch(new RegExp(`^sync-batch/${batchId}/ORD-\\d+/blob-\\d+\\.bin$`));
    expect(activityLine!.interactionId).toBeTypeOf('string');
    // A failed attempt (the rejected uploads) is a warning with its error.
    const failed = records.find((r) => r.activityType === 'deliverFile' && r.level === 'warn' && r.batchId === batchId);
    expect(failed, 'a failed deliverFile attempt').toMatchObject({
      target: 'default',
      err: { type: 'ApplicationFailure' },
    });
    const core = records.filter((r) => r.sdkComponent === 'core');
    expect(core.length, 'lines forwarded from the SDK core').toBeGreaterThan(0);
    for (const r of core) expect(r.target, 'the core names its Rust module `module`').toBeUndefined();
    expect(core.some((r) => typeof r.module === 'string')).toBe(true);
    // Secrets never reach the logs.
    for (const key of TEST_ENCRYPTION_KEYS_ENV.split(',').map((e) => e.split(':')[1]!)) {
      expect(worker.stderr).not.toContain(key);
    }
    expect(worker.stderr).not.toContain(TEST_TOKEN);
  });
});
