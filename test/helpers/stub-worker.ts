/**
 * The workflows on the run's shared dev server with stub activities: no simulator, no HTTP, no
 * ledger, no files. Every activity answers from memory unless the test gives its own, and every
 * call is recorded, so a test asserts what the workflows decided (resends and their backoff,
 * thresholds, the outage pause, cancellation) in a second or two.
 *
 * One worker serves a whole test file (making one takes a second or two); each test gives it
 * its own activities through the `stubWorker` fixture (./fixture.ts), and the workflows a test
 * leaves running are terminated after it.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import type { Activities } from '../../src/activities';
import { imageSyncDataConverter } from '../../src/codec/encryption';
import { FailureType } from '../../src/failures';
import {
  batchWorkflowId,
  cancelSignal,
  fileWorkflowId,
  DEFAULT_POLICY,
  type BatchPolicy,
  type SyncBatchInput,
  type SyncFileInput,
  type SyncItem,
} from '../../src/shared';
import { installWorkerLogging } from '../../src/temporal/logging';
import type { syncBatch } from '../../src/workflows/sync-batch';
import type { syncFile } from '../../src/workflows/sync-file';

/** The activities syncBatch and syncFile call: the ones a stub worker runs. */
type StubbedActivities = Pick<
  Activities,
  | 'deliverFile'
  | 'sendFile'
  | 'verifyFile'
  | 'compensate'
  | 'recordRollbackFailed'
  | 'markCancelled'
  | 'rollbackRecordedFiles'
  | 'openBatch'
  | 'applyLimits'
  | 'finishBatch'
  | 'noteResend'
  | 'loadItems'
  | 'awaitFileResults'
  | 'probeRecordingSystem'
  | 'queueBatchRedrives'
  | 'loadRedrives'
>;
type ActivityName = keyof StubbedActivities;
type Args<N extends ActivityName> = Parameters<StubbedActivities[N]>[0];

export interface ActivityCall<N extends ActivityName = ActivityName> {
  name: N;
  args: Args<N>;
  /** Date.now() when the call began. */
  at: number;
}

/** The stub worker as one test sees it. */
export interface StubbedWorker {
  client: Client;
  taskQueue: string;
  /** Every activity call of this test, in order. */
  calls: ActivityCall[];
  callsOf<N extends ActivityName>(name: N): ActivityCall<N>[];
  /** `count` items of one order; their files exist nowhere (the stubs never read them). */
  items(count: number): SyncItem[];
  startBatch(items: SyncItem[], policy?: Partial<BatchPolicy>): Promise<WorkflowHandle<typeof syncBatch>>;
  startFile(
    item: SyncItem,
    policy?: Partial<SyncFileInput['policy']>,
    opts?: { cancelFirst?: string },
  ): Promise<WorkflowHandle<typeof syncFile>>;
}

export interface StubWorkerHost {
  /** The worker for one test, with these activities in place of the stubs. */
  use(activities?: Partial<StubbedActivities>): StubbedWorker;
  /** Ends the test's use: its workflows still running are terminated. */
  release(): Promise<void>;
  close(): Promise<void>;
}

/** A transport fault as the HTTP adapter raises it (counts towards the outage pause). */
export function unavailable(): ApplicationFailure {
  // Retried by the activity's own policy first; a short delay keeps those retries quick.
  return ApplicationFailure.create({
    type: FailureType.Unavailable,
    message: 'recording system answered 503',
    nextRetryDelay: '20 milliseconds',
  });
}

/** A rejection as the HTTP adapter raises it (not resendable). */
export function rejected(): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureType.Rejected, message: 'rejected: 422', nonRetryable: true });
}

const DIGEST = { sha256: 'ab'.repeat(32), size: 1 };

function stubs(manifests: Map<string, SyncItem[]>): StubbedActivities {
  return {
    deliverFile: async () => ({ kind: 'sent', ...DIGEST, verdict: { ok: true } }),
    sendFile: async () => DIGEST,
    verifyFile: async () => ({ ok: true }),
    compensate: async () => ({ status: 'DONE', detail: 'removed' }),
    recordRollbackFailed: async () => {},
    markCancelled: async () => 'cancelled',
    rollbackRecordedFiles: async () => ({ rolledBack: 0, failed: 0 }),
    openBatch: async () => ({ batch: {}, targets: { default: {} } }),
    applyLimits: async () => {},
    finishBatch: async () => ({ recorded: 0, rolledBack: 0, failed: 0 }),
    noteResend: async () => {},
    loadItems: async ({ manifestPath, offset, limit }) =>
      (manifests.get(manifestPath) ?? []).slice(offset, offset + limit),
    awaitFileResults: async () => [],
    probeRecordingSystem: async () => {},
    queueBatchRedrives: async ({ from }) => ({ end: from, count: 0, rolledBack: 0, rollbackFailed: 0, keys: [] }),
    loadRedrives: async () => [],
  };
}

export async function startStubWorkerHost(): Promise<StubWorkerHost> {
  installWorkerLogging('ERROR');
  const address = inject('temporalAddress');
  const manifests = new Map<string, SyncItem[]>();
  const defaults = stubs(manifests);
  let current: Partial<StubbedActivities> = {};
  let calls: ActivityCall[] = [];
  const started: { handle: WorkflowHandle; children: string[] }[] = [];
  const activities = Object.fromEntries(
    Object.keys(defaults).map((name) => [
      name,
      (args: never) => {
        calls.push({ name: name as ActivityName, args, at: Date.now() });
        const fn = current[name as ActivityName] ?? defaults[name as ActivityName];
        return (fn as (a: never) => Promise<unknown>)(args);
      },
    ]),
  );

  const connection = await Connection.connect({ address });
  const native = await NativeConnection.connect({ address });
  const dataConverter = imageSyncDataConverter(undefined);
  const taskQueue = `stub-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    taskQueue,
    workflowBundle: { code: await readFile(inject('workflowBundlePath'), 'utf8') },
    dataConverter,
    activities,
  });
  const running = worker.run();
  const client = new Client({ connection, dataConverter });
  const policyOf = (policy: Partial<BatchPolicy>): BatchPolicy => ({ ...DEFAULT_POLICY, ...policy });
  /** A workflow the test started, with the file workflows it starts in turn. */
  const track = <H extends WorkflowHandle>(handle: H, children: string[] = []): H => {
    started.push({ handle, children });
    return handle;
  };

  const view: StubbedWorker = {
    client,
    taskQueue,
    get calls() {
      return calls;
    },
    callsOf: <N extends ActivityName>(name: N) => calls.filter((c): c is ActivityCall<N> => c.name === name),
    items: (count) => {
      const order = `ORD-${randomUUID().slice(0, 8)}`;
      return Array.from({ length: count }, (_, i) => ({
        orderId: order,
        fileName: `scan-${i}.png`,
        sourcePath: `/nowhere/${order}/scan-${i}.png`,
      }));
    },
    async startBatch(items, policy = {}) {
      const batchId = `stub-${randomUUID().slice(0, 12)}`;
      const manifestPath = `memory:${batchId}`;
      manifests.set(manifestPath, items);
      const input: SyncBatchInput = { batchId, manifestPath, total: items.length, policy: policyOf(policy) };
      return track(
        await client.workflow.start<typeof syncBatch>('syncBatch', {
          workflowId: batchWorkflowId(batchId),
          taskQueue,
          args: [input],
        }),
        items.map((item) => fileWorkflowId(batchId, item.orderId, item.fileName)),
      );
    },
    async startFile(item, policy = {}, opts = {}) {
      const { maxResends, resendBackoffMs, localSendMaxBytes, resendRecorded, claimPatienceMs } = policyOf(policy);
      const input: SyncFileInput = {
        batchId: `stub-${randomUUID().slice(0, 12)}`,
        item,
        attempt: 0,
        policy: {
          maxResends,
          resendBackoffMs,
          localSendMaxBytes,
          claimPatienceMs,
          ...(resendRecorded ? { resendRecorded } : {}),
        },
      };
      const start = { workflowId: `stub-file-${randomUUID()}`, taskQueue, args: [input] as [SyncFileInput] };
      if (opts.cancelFirst === undefined) {
        return track(await client.workflow.start<typeof syncFile>('syncFile', start));
      }
      // The cancel signal is in the history before the workflow's first task.
      return track(
        await client.workflow.signalWithStart<typeof syncFile, [string?]>('syncFile', {
          ...start,
          signal: cancelSignal,
          signalArgs: [opts.cancelFirst],
        }),
      );
    },
  };

  return {
    use(activities = {}) {
      current = activities;
      calls = [];
      return view;
    },
    async release() {
      for (const { handle, children } of started.splice(0)) {
        if ((await handle.describe()).status.name !== 'RUNNING') continue;
        // A batch's files are abandoned when it ends: each goes too.
        for (const id of [handle.workflowId, ...children]) {
          await client.workflow
            .getHandle(id)
            .terminate('the test is over')
            .catch(() => undefined);
        }
      }
      current = {};
    },
    async close() {
      worker.shutdown();
      await running;
      await native.close();
      await connection.close();
    },
  };
}
