/** The image-sync command line. Every command here works; each has --help. */
import { Command } from 'commander';
import { registerDemo } from './commands/demo';
import { registerDevServer } from './commands/dev-server';
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
    .configureOutput({ outputError: (text, write) => write(`image-sync: ${text.replace(/^error: /, '')}`) });
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
    registerReconcile,
    registerSchedule,
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
  IMAGE_SYNC_TASK_QUEUE     task queue (default image-sync)`,
  );
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('image-sync.js') || process.argv[1]?.endsWith('image-sync')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`image-sync: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
}
