/**
 * The workflow tests' fixtures. `harness(options)` starts a stack (./harness.ts) for one test
 * and closes it after the test, after its afterEach hooks, whether the test passed or not;
 * `sharedHarness` is one stack for every test of a file that asks for it; `stubWorker(activities)`
 * runs the workflows with stub activities (./stub-worker.ts), one worker per file.
 *
 *   it('...', async ({ harness }) => {
 *     const h = await harness({ simulator: { dropRate: 0.3 } });
 *     ...
 *   });
 */
import { test as base } from 'vitest';
import { startHarness, type Harness, type HarnessOptions } from './harness';
import { startStubWorkerHost, type StubWorkerHost } from './stub-worker';

// Vitest reads what a fixture depends on from its first parameter, which must be a pattern.
/* eslint-disable no-empty-pattern */
export const test = base
  .extend('harness', async ({}, { onCleanup }) => {
    const opened: Harness[] = [];
    onCleanup(async () => {
      for (const h of opened.splice(0).reverse()) await h.close();
    });
    return async (opts?: HarnessOptions): Promise<Harness> => {
      const h = await startHarness(opts);
      opened.push(h);
      return h;
    };
  })
  .extend('stubWorkerHost', { scope: 'file' }, async ({}, { onCleanup }) => {
    const host = await startStubWorkerHost();
    onCleanup(() => host.close());
    return host;
  })
  .extend('stubWorker', async ({ stubWorkerHost }, { onCleanup }) => {
    onCleanup(() => stubWorkerHost.release());
    return async (activities?: Parameters<StubWorkerHost['use']>[0]) => stubWorkerHost.use(activities);
  })
  .extend('sharedHarness', { scope: 'file' }, async ({}, { onCleanup }) => {
    const h = await startHarness();
    onCleanup(() => h.close());
    return h;
  });
/* eslint-enable no-empty-pattern */

export const it = test;
