/**
 * A full image-sync stack for workflow tests (src/devtools/stack.ts): the run's shared dev
 * server, a fresh task queue, a real ledger, a real simulator over HTTP and a worker running the
 * bundled workflows, with encrypted payloads; plus what tests do with it (files, batches, the
 * consistency check). Tests take it from the `harness` fixture (./fixture.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inject } from 'vitest';
import { startBatch, type StartBatchOptions } from '../../src/batch/start';
import { checkBatchConsistency, type ConsistencyReport } from '../../src/consistency/invariant';
import { startStack, type Stack } from '../../src/devtools/stack';
import type { RecordingSystem } from '../../src/recording-system/port';
import type { SimulatorOptions } from '../../src/devtools/simulator/options';
import { DEFAULT_POLICY, type BatchPolicy, type RateLimit, type SyncItem } from '../../src/shared';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import type { SyncWorkerOptions } from '../../src/worker';
import { testEncryptionKeys } from './keys';

export { TEST_ENCRYPTION_KEYS_ENV, testEncryptionKeys } from './keys';

export const TEST_TOKEN = 'test-token-do-not-log-3f9a';

/**
 * The two ways a file is sent: inside its workflow task by a local activity (files up to the
 * local-send limit), or by a regular, heartbeating activity (every file, with a limit of 0).
 */
export const TRANSFER_PATHS = [
  { path: 'local activity', localSendMaxBytes: DEFAULT_POLICY.localSendMaxBytes },
  { path: 'regular activity', localSendMaxBytes: 0 },
] as const;

export interface HarnessOptions {
  ledgerUrl?: string;
  simulator?: Partial<SimulatorOptions>;
  /** More recording systems, each a simulator of its own, by target name. */
  extraTargets?: string[];
  /** The token the worker sends (the simulators expect TEST_TOKEN). */
  workerToken?: string;
  /** Policy every batch of this harness starts with, under what start() is given. */
  policy?: Partial<BatchPolicy>;
  /** Where the worker sends the default target's requests (a proxy in front of the simulator). */
  workerUrl?: string;
  /** Rate limits of the targets, as a targets file gives them. */
  targetLimits?: Record<string, RateLimit>;
  /** The key the worker signs notifications with. */
  notifySecret?: string;
  /** The default target's adapter, for a kind of target other than the simulator's HTTP. */
  defaultSystem?: (use: 'stack' | 'worker') => RecordingSystem;
  /** Slots of the in-process worker (fewer activity slots make tasks queue on the server). */
  workerTuning?: SyncWorkerOptions['tuning'];
}

export interface Harness extends Stack {
  /** Writes `count` files of `size` bytes under workDir and returns their items. */
  makeFiles(count: number, size?: number, ordersOf?: number): Promise<SyncItem[]>;
  start(
    items: SyncItem[],
    policy?: Partial<BatchPolicy>,
    batchId?: string,
    more?: Pick<StartBatchOptions, 'limits' | 'notify'>,
  ): ReturnType<typeof startBatch>;
  consistency(batchId: string, maxResends?: number): Promise<ConsistencyReport>;
}

let bundle: Promise<{ code: string }> | undefined;

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  bundle ??= readFile(inject('workflowBundlePath'), 'utf8').then((code) => ({ code }));
  const stack = await startStack({
    temporal: { address: inject('temporalAddress') },
    tempDirPrefix: 'image-sync-test-',
    taskQueue: `test-${randomUUID()}`,
    token: TEST_TOKEN,
    workerToken: opts.workerToken,
    ledgerUrl: opts.ledgerUrl,
    simulator: opts.simulator,
    extraTargets: opts.extraTargets,
    requestTimeoutMs: 2_000,
    workerUrl: opts.workerUrl,
    targetLimits: opts.targetLimits,
    notifySecret: opts.notifySecret,
    defaultSystem: opts.defaultSystem,
    encryptionKeys: testEncryptionKeys(),
    workflowBundle: await bundle,
    worker: { kind: 'in-process', heartbeatEveryMs: 500, tuning: opts.workerTuning },
  });
  // The stack itself (its worker and workerPids stay live), with what tests do on top.
  return Object.assign(Object.create(stack) as Stack, {
    async makeFiles(count: number, size = 2048, ordersOf = 10) {
      const dir = path.join(stack.workDir, `src-${randomUUID().slice(0, 8)}`);
      await generateBlobFiles(dir, { count, size, filesPerOrder: ordersOf });
      const parsed = await scanDirectory(dir);
      if (parsed.errors.length) throw new Error(JSON.stringify(parsed.errors));
      return parsed.items;
    },
    start(
      items: SyncItem[],
      policy?: Partial<BatchPolicy>,
      batchId?: string,
      more?: Pick<StartBatchOptions, 'limits' | 'notify'>,
    ) {
      return startBatch(stack.client, items, {
        ...more,
        taskQueue: stack.taskQueue,
        batchId: batchId ?? `t-${randomUUID().slice(0, 12)}`,
        stateDir: stack.workDir,
        policy: { resendBackoffMs: 50, ...opts.policy, ...policy },
      });
    },
    consistency(batchId: string, maxResends?: number) {
      return checkBatchConsistency({ ledger: stack.ledger, targets: stack.targets, batchId, maxResends });
    },
  });
}
