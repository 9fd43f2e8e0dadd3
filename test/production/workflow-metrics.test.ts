/**
 * countOutagePause, the helper the batch workflow calls when it pauses itself: from inside the
 * workflow sandbox, through the SDK's workflow metric meter, to the Temporal runtime's Prometheus
 * exporter that the worker's /metrics re-serves, under its own name (no `temporal_` prefix).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { OUTAGE_PAUSES_METRIC } from '../../src/observability/metric-names';
import { installWorkerRuntime } from '../../src/observability/runtime';
import { freePort } from '../../src/temporal/dev-server';

describe('the outage pause counter of the batch workflow', () => {
  it('reaches the runtime exporter as image_sync_outage_pauses_total{target}', async () => {
    const port = await freePort();
    installWorkerRuntime({ level: 'ERROR', format: 'json', corePrometheusAddress: `127.0.0.1:${port}` });
    const address = inject('temporalAddress');
    const native = await NativeConnection.connect({ address });
    const connection = await Connection.connect({ address });
    const taskQueue = `metrics-${randomUUID()}`;
    try {
      const worker = await Worker.create({
        connection: native,
        taskQueue,
        workflowsPath: path.join(__dirname, 'fixtures', 'outage-workflow.ts'),
      });
      await worker.runUntil(
        new Client({ connection }).workflow.execute('pausesTwice', {
          taskQueue,
          workflowId: `pauses-${randomUUID()}`,
          args: ['east'],
        }),
      );
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`${OUTAGE_PAUSES_METRIC}{`) && l.includes('target="east"'));
      expect(
        line,
        text
          .split('\n')
          .filter((l) => l.includes('outage'))
          .join('\n'),
      ).toBeDefined();
      expect(Number(line!.split(' ').at(-1))).toBe(2);
    } finally {
      await connection.close();
      await native.close();
    }
  });
});
