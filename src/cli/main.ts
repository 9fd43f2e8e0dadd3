/** The image-sync command line. Every command here works; each has --help. */
import { Command } from 'commander';
import { loadAppEnvOrExit } from '../config/env';
import { errorText } from '../errors';
import { registerCodecServer } from './commands/codec-server';
import { registerDemo } from './commands/demo';
import { registerDevServer } from './commands/dev-server';
import { registerList } from './commands/list';
import { registerReconcile } from './commands/reconcile';
import { registerRecordingSystem } from './commands/recording-system';
import { registerReport } from './commands/report';
import { registerSchedule } from './commands/schedule';
import { registerSignals } from './commands/signals';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerTemporalServer } from './commands/temporal-server';
import { registerWorker } from './commands/worker';

export function buildProgram(): Command {
  const program = new Command()
    .name('image-sync')
    .description('Durable, provable synchronization of order image files to their recording systems, on Temporal.')
    .showHelpAfterError('(add --help for usage)')
    // Usage errors (unknown option, bad value, missing argument) are bad input: exit code 2.
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        process.exit(0);
      process.exit(2);
    })
    .configureOutput({ outputError: (text, write) => write(`image-sync: ${text.replace(/^error: /, '')}`) })
    // The configuration is parsed once, before any command runs (not for --help): a bad value
    // ends the process with one line naming the variable, exit code 2.
    .hook('preAction', () => {
      loadAppEnvOrExit();
    });
  for (const register of [
    registerDemo,
    registerDevServer,
    registerTemporalServer,
    registerRecordingSystem,
    registerWorker,
    registerStart,
    registerStatus,
    registerSignals,
    registerReport,
    registerList,
    registerReconcile,
    registerSchedule,
    registerCodecServer,
  ]) {
    register(program);
  }
  program.addHelpText(
    'after',
    `
Environment:
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE  Temporal connection (default localhost:7233)
  RECORDING_SYSTEM_URL, RECORDING_SYSTEM_TOKEN                            the default recording system
  IMAGE_SYNC_TARGETS_FILE                                                 several recording systems (JSON)
  IMAGE_SYNC_LEDGER_URL     sqlite:<path> or postgres://... (default sqlite:./.image-sync/ledger.db)
  IMAGE_SYNC_TASK_QUEUE     task queue (default image-sync)
  RECORDING_SYSTEM_MAX_CONCURRENCY   requests in flight to the default recording system, per worker (default 32)
  IMAGE_SYNC_LOG_LEVEL      worker log level: TRACE, DEBUG, INFO, WARN, ERROR (default INFO)
  IMAGE_SYNC_SHUTDOWN_GRACE_MS       on SIGTERM/SIGINT, how long a worker lets work in flight finish (default 30000)
  IMAGE_SYNC_ENCRYPTION_KEYS  id:base64key[,...]: AES-256-GCM payload keys (the first encrypts, all decrypt)
  IMAGE_SYNC_LOG_FORMAT     json or text (default: text on a terminal, json otherwise)
  IMAGE_SYNC_METRICS_PORT   worker's Prometheus /metrics and /health port
  TEMPORAL_CLI_PATH         a Temporal CLI to use instead of finding or installing one
A bad value stops every command with exit code 2 and one line naming the variable.`,
  );
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('image-sync.js') || process.argv[1]?.endsWith('image-sync')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`image-sync: ${errorText(err)}\n`);
      process.exitCode = 1;
    });
}
