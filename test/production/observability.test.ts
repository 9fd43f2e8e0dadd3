/**
 * The parts of logs and metrics that need no Temporal server: the log fields and both formats,
 * the ledger decorator's counting (retried writes count once; interactions opened elsewhere are
 * looked up), and the activity interceptor's timing table.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Context } from '@temporalio/activity';
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger';
import type { Ledger } from '../../src/ledger/port';
import { fileFieldsOf, observabilityInterceptors } from '../../src/observability/activity-interceptor';
import { createPinoLogger, defaultLogFormat, logFields, PinoTemporalLogger } from '../../src/observability/logger';
import { startMetricsServer } from '../../src/observability/metrics-server';
import { meteredLedger } from '../../src/observability/metered-ledger';
import { SyncMetrics } from '../../src/observability/metrics';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-obs-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes through a logger of the given format into a file, and returns what was written. */
function written(format: 'json' | 'text', write: (logger: PinoTemporalLogger) => void): string {
  const file = path.join(tempDir(), 'log');
  const fd = openSync(file, 'w');
  try {
    write(new PinoTemporalLogger(createPinoLogger(format, 'DEBUG', fd)));
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

async function value(metrics: SyncMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { labels: Record<string, unknown>; value: number; metricName?: string }[];
  return values
    .filter((v) => (v.metricName ?? name) === name || v.metricName === `${name}_count`)
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('log fields and formats', () => {
  it('flattens the SDK metadata: runId for activities, batchId from the workflow id, the core module, errors', () => {
    const fields = logFields({
      workflowId: 'sync-batch/B1/ORD-1/a.png',
      workflowRunId: 'run-1',
      activityType: 'sendFile',
      attempt: 2,
      error: new Error('boom'),
    });
    expect(fields).toMatchObject({ runId: 'run-1', batchId: 'B1', activityType: 'sendFile', attempt: 2 });
    expect(fields.err).toBeInstanceOf(Error);
    expect(logFields({ sdkComponent: 'core', target: 'temporalio_sdk_core::worker' })).toEqual({
      sdkComponent: 'core',
      module: 'temporalio_sdk_core::worker',
    });
    // image-sync's own target (a recording system) stays `target`.
    expect(logFields({ sdkComponent: 'worker', target: 'east' }).target).toBe('east');
    expect(logFields({ workflowId: 'sync-schedule/x' }).batchId).toBeUndefined();
  });

  it('json: one object a line, every field, errors with type, message and stack', () => {
    const out = written('json', (log) => {
      log.info('Activity completed', {
        workflowId: 'sync-batch/B2/O/f',
        runId: 'r',
        activityType: 'verifyFile',
        attempt: 1,
        target: 'west',
      });
      log.warn('Activity failed', { error: Object.assign(new Error('rejected /data/x'), { type: 'Rejected' }) });
      log.debug('detail');
      log.trace('below the level');
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(3);
    const [first, second, third] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({
      level: 'info',
      msg: 'Activity completed',
      workflowId: 'sync-batch/B2/O/f',
      runId: 'r',
      activityType: 'verifyFile',
      attempt: 1,
      target: 'west',
      batchId: 'B2',
      service: 'image-sync',
    });
    expect(new Date(String(first!.time)).toISOString()).toBe(first!.time);
    expect(second).toMatchObject({ level: 'warn', err: { type: 'Error', message: 'rejected /data/x' } });
    expect(String((second!.err as { stack: string }).stack)).toContain('rejected /data/x');
    expect(third).toMatchObject({ level: 'debug', msg: 'detail' });
  });

  it('defaults to text on a terminal and json elsewhere', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('text');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
  });

  it('text: one readable line a record, with its level, message and fields', () => {
    const out = written('text', (log) => {
      log.info('Worker state changed', { state: 'RUNNING', taskQueue: 'q' });
      log.error('Activity failed', { activityType: 'sendFile', batchId: 'B3', error: new Error('boom') });
    });
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/INFO.*Worker state changed/);
    expect(lines[0]).toContain('"state":"RUNNING"');
    expect(lines[0]).not.toMatch(/^\{/);
    expect(out).toMatch(/ERROR.*Activity failed.*"batchId":"B3"/);
    expect(out).toContain('boom');
  });
});

describe('the metered ledger', () => {
  let ledger: Ledger | undefined;
  afterEach(async () => {
    await ledger?.close();
    ledger = undefined;
  });

  const open = (id: string, target: string) => ({
    interactionId: id,
    batchId: 'B',
    orderId: `O-${id}`,
    fileName: 'f.png',
    target,
    sourcePath: '/src/f.png',
    sha256: '',
    sizeBytes: 0,
    status: 'SENDING' as const,
  });

  it('counts each event and end state once, however often a retried activity writes it', async () => {
    ledger = await openLedger(`sqlite:${path.join(tempDir(), 'ledger.db')}`);
    await ledger.migrate();
    const metrics = new SyncMetrics();
    const metered = meteredLedger(ledger, metrics);
    await metered.ensureBatch({ batchId: 'B', workflowId: 'sync-batch/B', total: 2, state: 'RUNNING' });
    await metered.openInteraction(open('i1', 'east'));
    for (let retry = 0; retry < 2; retry++) {
      await metered.appendEvent({ interactionId: 'i1', eventKey: 'SENT:0', kind: 'SENT', detail: { size: 100 } });
      await metered.appendEvent({
        interactionId: 'i1',
        eventKey: 'VERIFY_FAILED:0',
        kind: 'VERIFY_FAILED',
        detail: { rule: 'checksum' },
      });
      await metered.appendEvent({ interactionId: 'i1', eventKey: 'RESEND_QUEUED:1', kind: 'RESEND_QUEUED' });
    }
    await metered.appendEvent({ interactionId: 'i1', eventKey: 'SENT:1', kind: 'SENT', detail: { size: 100 } });
    await metered.updateInteraction('i1', { status: 'RECORDED' });
    await metered.updateInteraction('i1', { status: 'RECORDED' });
    await metered.updateInteraction('i1', { status: 'VERIFYING' });

    expect(await value(metrics, 'image_sync_bytes_sent_total', { target: 'east' })).toBe(200);
    expect(await value(metrics, 'image_sync_verification_failures_total', { rule: 'checksum', target: 'east' })).toBe(
      1,
    );
    expect(await value(metrics, 'image_sync_resends_total', { target: 'east' })).toBe(1);
    expect(await value(metrics, 'image_sync_files_finished_total', { outcome: 'RECORDED', target: 'east' })).toBe(1);
    // The writes reached the ledger underneath, once each.
    expect((await ledger.listEvents('i1')).map((e) => e.kind)).toEqual([
      'SENT',
      'VERIFY_FAILED',
      'RESEND_QUEUED',
      'SENT',
    ]);
  });

  it('finds the target of an interaction another process opened, and counts rollbacks by status', async () => {
    ledger = await openLedger(`sqlite:${path.join(tempDir(), 'ledger.db')}`);
    await ledger.migrate();
    await ledger.ensureBatch({ batchId: 'B', workflowId: 'sync-batch/B', total: 2, state: 'RUNNING' });
    await ledger.openInteraction(open('i2', 'west'));
    await ledger.openInteraction(open('i3', 'west'));
    const metrics = new SyncMetrics();
    const metered = meteredLedger(ledger, metrics);
    await metered.appendEvent({ interactionId: 'i2', eventKey: 'ROLLED_BACK', kind: 'ROLLED_BACK' });
    await metered.updateInteraction('i2', { status: 'ROLLED_BACK' });
    await metered.appendEvent({ interactionId: 'i3', eventKey: 'ROLLBACK_FAILED', kind: 'ROLLBACK_FAILED' });
    await metered.updateInteraction('i3', { status: 'ROLLBACK_FAILED' });
    expect(await value(metrics, 'image_sync_rollbacks_total', { target: 'west', status: 'DONE' })).toBe(1);
    expect(await value(metrics, 'image_sync_rollbacks_total', { target: 'west', status: 'FAILED' })).toBe(1);
    expect(await value(metrics, 'image_sync_files_finished_total', { outcome: 'ROLLED_BACK', target: 'west' })).toBe(1);
    expect(
      await value(metrics, 'image_sync_files_finished_total', { outcome: 'ROLLBACK_FAILED', target: 'west' }),
    ).toBe(1);
    // Everything else passes through.
    expect(metered.dialect).toBe('sqlite');
    expect((await metered.getInteraction('i2'))?.status).toBe('ROLLED_BACK');
  });

  it('knows the target of an interaction opened with its claim, without reading it back', async () => {
    ledger = await openLedger(`sqlite:${path.join(tempDir(), 'ledger.db')}`);
    await ledger.migrate();
    await ledger.ensureBatch({ batchId: 'B', workflowId: 'sync-batch/B', total: 1, state: 'RUNNING' });
    const metrics = new SyncMetrics();
    let lookups = 0;
    const counting = new Proxy(ledger, {
      get(target, prop, receiver) {
        if (prop === 'getInteraction') lookups += 1;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const metered = meteredLedger(counting, metrics);
    const i = open('i4', 'north');
    const { firstClaim } = await metered.openClaimed(
      i,
      { ...i, workflowId: 'sync-batch/B/O-i4/f.png', runId: 'run-1' },
      { redrive: 0 },
    );
    expect(firstClaim).toBe(true);
    await metered.appendEvent({ interactionId: 'i4', eventKey: 'SENT:0', kind: 'SENT', detail: { size: 10 } });
    await metered.updateInteraction('i4', { status: 'RECORDED' });
    expect(await value(metrics, 'image_sync_bytes_sent_total', { target: 'north' })).toBe(10);
    expect(await value(metrics, 'image_sync_files_finished_total', { outcome: 'RECORDED', target: 'north' })).toBe(1);
    expect(lookups).toBe(0);
  });

  it('counts the events and end state of a recorded step once, however often it is retried', async () => {
    ledger = await openLedger(`sqlite:${path.join(tempDir(), 'ledger.db')}`);
    await ledger.migrate();
    await ledger.ensureBatch({ batchId: 'B', workflowId: 'sync-batch/B', total: 2, state: 'RUNNING' });
    const metrics = new SyncMetrics();
    const metered = meteredLedger(ledger, metrics);
    await metered.openInteraction(open('i5', 'south'));
    await metered.openInteraction(open('i6', 'south'));
    for (let retry = 0; retry < 2; retry++) {
      await metered.recordStep(
        'i5',
        [
          { eventKey: 'SENT:0', kind: 'SENT', detail: { size: 40 } },
          { eventKey: 'VERIFY_FAILED:0', kind: 'VERIFY_FAILED', detail: { rule: 'size' } },
        ],
        { lastError: 'size' },
      );
      await metered.recordStep(
        'i6',
        [
          { eventKey: 'SENT:0', kind: 'SENT', detail: { size: 2 } },
          { eventKey: 'VERIFIED:0', kind: 'VERIFIED' },
        ],
        { status: 'RECORDED', lastError: null },
      );
    }
    expect(await value(metrics, 'image_sync_bytes_sent_total', { target: 'south' })).toBe(42);
    expect(await value(metrics, 'image_sync_verification_failures_total', { rule: 'size', target: 'south' })).toBe(1);
    expect(await value(metrics, 'image_sync_files_finished_total', { outcome: 'RECORDED', target: 'south' })).toBe(1);
    expect((await ledger.listEvents('i6')).map((e) => e.kind)).toEqual(['SENT', 'VERIFIED']);
  });
});

describe('the metrics server', () => {
  it("answers /health 200 only while the worker polls, and /metrics with image-sync's metrics and the runtime's", async () => {
    let polling = false;
    const metrics = new SyncMetrics();
    metrics.resends.inc({ target: 'east' }, 3);
    // A stand-in for the Temporal runtime's exporter.
    const runtime = await startMetricsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: new SyncMetrics(),
      health: () => ({ ok: true, status: 'polling' }),
    });
    const server = await startMetricsServer({
      port: 0,
      host: '127.0.0.1',
      metrics,
      runtimeMetricsUrl: `${runtime.url}/health`,
      health: () => (polling ? { ok: true, status: 'polling' } : { ok: false, status: 'starting' }),
    });
    try {
      const starting = await fetch(`${server.url}/health`);
      expect(starting.status).toBe(503);
      expect(await starting.json()).toEqual({ status: 'starting' });
      polling = true;
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toContain('image_sync_resends_total{target="east"} 3');
      expect(text).toContain('{"status":"polling"}'); // what the stand-in exporter answered
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
      await runtime.close();
      // The runtime's exporter gone: image-sync's own metrics still answer, with a comment.
      const without = await (await fetch(`${server.url}/metrics`)).text();
      expect(without).toContain('image_sync_resends_total{target="east"} 3');
      expect(without).toMatch(/^# Temporal runtime metrics unavailable/m);
    } finally {
      await server.close();
      await runtime.close();
    }
  });
});

describe('the activity interceptor', () => {
  const ctx = (activityType: string) => ({ info: { activityType } }) as unknown as Context;

  it('reads batch id, interaction id and target from the first argument', () => {
    const resolve = (t: string | undefined) => t ?? 'default';
    expect(fileFieldsOf([{ batchId: 'B', interactionId: 'i', item: { target: 'east' } }], resolve)).toEqual({
      batchId: 'B',
      interactionId: 'i',
      target: 'east',
    });
    expect(fileFieldsOf([{ batchId: 'B', item: {} }], resolve)).toEqual({ batchId: 'B', target: 'default' });
    expect(fileFieldsOf([{ target: 'west' }], resolve)).toEqual({ target: 'west' });
    expect(fileFieldsOf([], resolve)).toEqual({});
  });

  it('times the activities of its table: send ok/error, verify ok/failed', async () => {
    const metrics = new SyncMetrics();
    const factory = observabilityInterceptors({
      metrics,
      resolveTarget: (t) => t ?? 'default',
      timed: { transferSmall: 'transfer', check: 'verify' },
    });
    const args = [{ batchId: 'B', item: { target: 'east' } }];
    const call = (type: string, next: () => Promise<unknown>) =>
      factory(ctx(type)).inbound!.execute!({ args, headers: {} }, next);
    await call('transferSmall', () => Promise.resolve({ sha256: 'x' }));
    await expect(call('transferSmall', () => Promise.reject(new Error('503')))).rejects.toThrow('503');
    await call('check', () => Promise.resolve({ ok: false, rule: 'missing' }));
    await call('check', () => Promise.resolve({ ok: true }));
    await call('sendFile', () => Promise.resolve(undefined)); // not in this table: not timed
    expect(await value(metrics, 'image_sync_send_seconds', { target: 'east', result: 'ok' })).toBe(1);
    expect(await value(metrics, 'image_sync_send_seconds', { target: 'east', result: 'error' })).toBe(1);
    expect(await value(metrics, 'image_sync_verify_seconds', { target: 'east', result: 'failed' })).toBe(1);
    expect(await value(metrics, 'image_sync_verify_seconds', { target: 'east', result: 'ok' })).toBe(1);
    // And every log line of the activity carries the fields.
    const interceptors = factory(ctx('check'));
    await interceptors.inbound!.execute!({ args, headers: {} }, () => Promise.resolve({ ok: true }));
    expect(interceptors.outbound!.getLogAttributes!({ activityType: 'check' }, (a) => a)).toEqual({
      activityType: 'check',
      batchId: 'B',
      target: 'east',
    });
  });
});
