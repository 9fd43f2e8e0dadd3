/** The floor program's worker side (bench mode d): the same send + verify step every mode shares. */
import path from 'node:path';
import { bundleWorkflowCode, Worker, type NativeConnection } from '@temporalio/worker';
import { judge } from '../src/activities';
import type { RecordingSystem } from '../src/recording-system/port';
import type { SyncItem } from '../src/shared';
import { contentTypeFor, sha256File } from '../src/source/files';

/** Send then verify one file: PUT, then GET of the receipt judged by the preset rules. */
export async function sendAndVerify(system: RecordingSystem, item: SyncItem, key: string): Promise<void> {
  const digest = await sha256File(item.sourcePath);
  await system.put({
    orderId: item.orderId,
    fileName: item.fileName,
    sourcePath: item.sourcePath,
    sha256: digest.sha256,
    size: digest.size,
    contentType: contentTypeFor(item.fileName),
    idempotencyKey: key,
  });
  const verdict = judge(await system.stat(item.orderId, item.fileName), { ...digest, interactionId: key });
  if (!verdict.ok) throw new Error(`${item.orderId}/${item.fileName}: ${verdict.rule}`);
}

export function floorActivities(system: RecordingSystem) {
  return {
    async sendAndVerify(item: SyncItem, key: string): Promise<void> {
      await sendAndVerify(system, item, key);
    },
  };
}
export type FloorActivities = ReturnType<typeof floorActivities>;

const noop = () => undefined;

export async function createFloorWorker(opts: {
  connection: NativeConnection;
  taskQueue: string;
  system: RecordingSystem;
}): Promise<Worker> {
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'floor-workflows.ts'),
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error },
  });
  return Worker.create({
    connection: opts.connection,
    namespace: 'default',
    taskQueue: opts.taskQueue,
    workflowBundle,
    activities: floorActivities(opts.system),
    maxConcurrentLocalActivityExecutions: 100,
    maxConcurrentWorkflowTaskExecutions: 40,
  });
}
