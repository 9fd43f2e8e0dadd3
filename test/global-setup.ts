/**
 * One Temporal dev server for the whole run (the pinned CLI, through the SDK's `existing-path`
 * executable), the workflow bundle built once, and a codec server for the Temporal CLI in tests
 * (bearer token only). The browser tests run the Web UI server with sign-in and a codec server
 * of their own (test/helpers/web-ui.ts).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import {
  SA_BATCH_ID,
  SA_FILES_FAILED,
  SA_FILES_TOTAL,
  SA_ORDER_ID,
  SA_RESENDS,
  SA_STATE,
  SA_TARGET,
} from '../src/shared';
import { writeWorkflowBundle } from '../src/build/workflow-bundle';
import { createCodecAuthenticator } from '../src/codec/auth';
import { EncryptionCodec } from '../src/codec/encryption';
import { startCodecServer } from '../src/codec/server';
import { ensureTemporalCli, PROJECT_ROOT } from '../src/temporal/cli-binary';
import { devServerRequiredArgs } from '../src/temporal/dev-server';
import { TEST_CODEC_TOKEN, testEncryptionKeys } from './helpers/keys';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCliPath: string;
    workflowBundlePath: string;
    codecServerUrl: string;
  }
}

export const WORKFLOWS_PATH = path.join(PROJECT_ROOT, 'src', 'workflows', 'index.ts');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cli = await ensureTemporalCli();
  if (cli.kind !== 'path') throw new Error('the tests need the Temporal CLI: run `npm run temporal:install`');
  // The test stacks encrypt their payloads; the Temporal CLI reads them through this codec
  // server, with the token (no browser calls it: no CORS origin).
  const codecServer = await startCodecServer({
    codec: new EncryptionCodec(testEncryptionKeys()),
    port: 0,
    corsOrigins: [],
    authenticate: createCodecAuthenticator({ tokens: [TEST_CODEC_TOKEN] }),
  });
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli.path },
      ip: '127.0.0.1',
      searchAttributes: [SA_BATCH_ID, SA_ORDER_ID, SA_TARGET, SA_STATE, SA_RESENDS, SA_FILES_TOTAL, SA_FILES_FAILED],
      // The product's required dynamic configuration (task-queue priority), as every dev server it starts.
      extraArgs: ['--log-level', 'error', ...devServerRequiredArgs()],
    },
  });
  const outDir = path.join(PROJECT_ROOT, '.image-sync', 'test');
  mkdirSync(outDir, { recursive: true });
  const bundlePath = await writeWorkflowBundle(path.join(outDir, 'workflow-bundle.js'), WORKFLOWS_PATH);

  const address = env.connection.options.address;
  project.provide('temporalAddress', address);
  project.provide('temporalCliPath', cli.path);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('codecServerUrl', codecServer.url);
  return async () => {
    await env.teardown();
    await codecServer.close();
  };
}
