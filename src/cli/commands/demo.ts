import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { buildReport, formatReport } from '../../batch/report';
import { loadInput, startBatch } from '../../batch/start';
import { checkBatchConsistency } from '../../consistency/invariant';
import { appEnv, reloadAppEnv } from '../../config/env';
import { startDestination, type RunningDestination, type ServerKind } from '../../devtools/destinations/destination';
import { startLiveSubmissions } from '../../devtools/demo-intake';
import { startStack } from '../../devtools/stack';
import { DEFAULT_TARGET } from '../../intake/temporal-backend';
import { intakeBatchId } from '../../intake/workflow-api';
import type { SimulatorOptions } from '../../devtools/simulator/options';
import { generateSampleBatch } from '../../devtools/samples/sample-images';
import { freePort } from '../../temporal/dev-server';
import { action, parseIntOption, untilStopped } from '../common';
import { formatResult } from './start';
import { watchBatch } from './status';
import { runWorker } from './worker';

interface DemoFlags {
  orders: number;
  filesPerOrder: number;
  port: number;
  uiPort: number;
  exit?: boolean;
  stateDir: string;
  target: 'http' | ServerKind;
}

/** The simulator's moderate faults, as the demo announces them. */
const DEMO_FAULTS: Partial<SimulatorOptions> = {
  failRate: 0.05,
  dropRate: 0.03,
  corruptRate: 0.03,
  rejectRate: 0.01,
  latencyMs: 20,
};

async function portOrFree(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(preferred, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}

export function uiBatchLink(uiUrl: string, batchId: string, namespace = 'default'): string {
  return `${uiUrl}/namespaces/${namespace}/workflows?query=${encodeURIComponent(`SyncBatchId="${batchId}"`)}`;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'everything on this machine: dev server, the simulator with moderate faults or a real server (--target), a worker, a sample batch, and a few files submitted over the intake API while it runs',
    )
    .option('--orders <n>', 'orders in the sample batch', parseIntOption('--orders', 1, 10_000), 20)
    .option('--files-per-order <n>', 'image files per order', parseIntOption('--files-per-order', 1, 1_000), 10)
    .option(
      '--port <port>',
      'Temporal gRPC port (another is picked when taken)',
      parseIntOption('--port', 1, 65535),
      7233,
    )
    .option(
      '--ui-port <port>',
      'Web UI port (another is picked when taken)',
      parseIntOption('--ui-port', 1, 65535),
      8233,
    )
    .option(
      '--state-dir <dir>',
      "where the demo keeps its server database, ledger, files and the recording system's data",
      path.join('.image-sync', 'demo'),
    )
    .addOption(
      new Option(
        '--target <kind>',
        'the kind of recording system: the simulator (http) or a real server started for the demo (s3, sftp, webdav)',
      )
        .choices(['http', 's3', 'sftp', 'webdav'])
        .default('http'),
    )
    .option('--exit', 'stop everything once the batch has ended instead of waiting for Ctrl-C')
    .action(
      action(async (flags: DemoFlags) => {
        const dir = path.resolve(flags.stateDir);
        await mkdir(dir, { recursive: true });
        const say = (line: string) => process.stdout.write(`${line}\n`);
        const stop = untilStopped();

        let destination: RunningDestination | null = null;
        if (flags.target !== 'http') {
          // A server of that kind over an empty store, with credentials made for this run.
          const destDir = path.join(dir, `destination-${flags.target}`);
          await rm(destDir, { recursive: true, force: true });
          say(`Starting the ${flags.target} server...`);
          destination = await startDestination(flags.target, destDir);
        }
        try {
          await runDemo(flags, dir, say, stop, destination);
        } finally {
          await destination?.close();
        }
      }),
    );
}

async function runDemo(
  flags: DemoFlags,
  dir: string,
  say: (line: string) => void,
  stop: Promise<unknown>,
  destination: RunningDestination | null,
): Promise<void> {
  say('Starting the Temporal dev server...');
  const stack = await startStack({
    temporal: {
      devServer: {
        dbFile: path.join(dir, 'temporal.db'),
        port: await portOrFree(flags.port),
        uiPort: await portOrFree(flags.uiPort),
      },
    },
    workDir: dir,
    simulator: destination ? {} : DEMO_FAULTS,
    ...(destination ? { defaultSystem: () => destination.system() } : {}),
    taskQueue: appEnv().IMAGE_SYNC_TASK_QUEUE,
    encryptionKeys: appEnv().IMAGE_SYNC_ENCRYPTION_KEYS,
    // The worker `image-sync worker` runs, configured by the environment set below.
    worker: { kind: 'custom', run: (until) => runWorker({ logLevel: 'ERROR' }, until).catch(() => undefined) },
    deferWorker: true,
  });
  const { server, simulator, client, ledger } = stack;
  let closeLive = async () => {};
  try {
    // A real server is the default target of a targets file; its secrets are in files the
    // `<NAME>_FILE` variables name, so neither the output nor the env file holds one.
    let targetEnv: Record<string, string> = {
      RECORDING_SYSTEM_URL: simulator.url,
      RECORDING_SYSTEM_TOKEN: stack.token,
    };
    if (destination) {
      const targetsFile = path.join(dir, 'targets.json');
      await writeFile(
        targetsFile,
        `${JSON.stringify({ defaultTarget: 'default', targets: { default: destination.entry } }, null, 2)}\n`,
        { mode: 0o600 },
      );
      targetEnv = { IMAGE_SYNC_TARGETS_FILE: targetsFile, ...destination.env };
    }
    const env = {
      TEMPORAL_ADDRESS: server.address,
      ...targetEnv,
      IMAGE_SYNC_LEDGER_URL: stack.ledgerUrl,
    };
    Object.assign(process.env, env);
    reloadAppEnv();
    const envFile = path.join(dir, 'env');
    await writeFile(
      envFile,
      Object.entries(env)
        .map(([k, v]) => `export ${k}=${v}\n`)
        .join(''),
      { mode: 0o600 },
    );
    say(`  Temporal ${server.address}, Web UI ${server.uiUrl}`);
    if (destination) {
      say(`  target: ${destination.description} (no injected faults)`);
    } else {
      say(
        `  recording-system simulator ${simulator.url} (faults: 5% 503, 3% silent drop, 3% corruption, 1% rejection; 20 ms latency)`,
      );
    }

    const inbox = path.join(dir, `inbox-${flags.orders}x${flags.filesPerOrder}`);
    if (!existsSync(inbox)) {
      say(`Generating ${flags.orders * flags.filesPerOrder} sample PNG images in ${inbox}...`);
      await generateSampleBatch(inbox, { orders: flags.orders, filesPerOrder: flags.filesPerOrder });
    }

    await stack.startWorker();
    const input = await loadInput({ dir: inbox });
    const batchId = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
    const { handle } = await startBatch(client, input.items, {
      batchId,
      taskQueue: stack.taskQueue,
      stateDir: dir,
      policy: { maxConcurrency: 20, maxResends: 3, resendBackoffMs: 500 },
    });
    say(`Started batch ${batchId}: ${input.items.length} files. Follow it in the Web UI:`);
    say(`  ${uiBatchLink(server.uiUrl!, batchId)}`);
    // A few files of another order come in over the intake API while the batch runs, and go
    // ahead of it (task-queue priority, docs/intake.md).
    const live = await startLiveSubmissions({ client, ledger, taskQueue: stack.taskQueue, dir, count: 3, say, stop });
    closeLive = () => live.close();
    const result = await Promise.race([watchBatch(client, batchId), stop.then(() => undefined)]);
    const liveStates = result ? await Promise.race([live.done, stop.then(() => undefined)]) : undefined;
    if (result && liveStates) {
      const tally = new Map<string, number>();
      for (const state of liveStates.values()) tally.set(state, (tally.get(state) ?? 0) + 1);
      say(`Live submissions of ${live.orderId}: ${[...tally].map(([state, n]) => `${n} ${state}`).join(', ')}`);
      const intakeCheck = await checkBatchConsistency({
        ledger,
        targets: stack.targets,
        batchId: intakeBatchId(DEFAULT_TARGET),
        maxResends: 3,
      });
      say(
        `Intake consistency check: ${intakeCheck.files} files, ${intakeCheck.drifts.length} drifts, ${intakeCheck.needsAttention.length} needing attention`,
      );
    }
    if (result) {
      say(formatResult(result).trimEnd());
      const report = await buildReport(ledger, batchId);
      if (report) say(formatReport(report).trimEnd());
      const check = await checkBatchConsistency({
        ledger,
        targets: stack.targets,
        batchId,
        maxResends: 3,
      });
      say(
        `Consistency check: ${check.files} files, ${check.drifts.length} drifts, ${check.needsAttention.length} needing attention`,
      );
      say('');
      say(`Web UI: ${server.uiUrl}  (batch workflow ${handle.workflowId})`);
      say(`Other commands against this demo: source ${envFile}; then e.g. npx image-sync report ${batchId}`);
      if (!flags.exit) {
        say('Running until Ctrl-C...');
        await stop;
      }
    }
  } finally {
    say('Stopping...');
    await closeLive();
    await stack.close();
  }
}
