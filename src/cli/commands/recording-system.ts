import path from 'node:path';
import type { Command } from 'commander';
import { simulatorOptionsSchema } from '../../devtools/simulator/options';
import { startSimulator } from '../../devtools/simulator/simulator';
import { appEnv } from '../../config/env';
import { action, CliError, listenOptions, parseIntOption, parseRateOption, untilStopped } from '../common';

export const DEFAULT_SIMULATOR_PORT = 8787;

interface Flags {
  port: number;
  host: string;
  dataDir: string;
  token?: string;
  failRate: number;
  dropRate: number;
  corruptRate: number;
  rejectRate: number;
  timeoutRate: number;
  latencyMs: number;
  seed?: number;
}

export function registerRecordingSystem(program: Command): void {
  const command = program
    .command('recording-system')
    .description('run the recording-system simulator: the recording-system HTTP API, with fault injection');
  listenOptions(command, DEFAULT_SIMULATOR_PORT)
    .option(
      '--data-dir <dir>',
      'where files and receipts are kept across restarts',
      path.join('.image-sync', 'recording-system'),
    )
    .option('--token <token>', 'bearer token clients must send (default: $RECORDING_SYSTEM_TOKEN)')
    .option('--fail-rate <p>', 'probability of a 503 per request', parseRateOption('--fail-rate'), 0)
    .option(
      '--drop-rate <p>',
      'probability per PUT of answering 201 and keeping nothing',
      parseRateOption('--drop-rate'),
      0,
    )
    .option('--corrupt-rate <p>', 'probability per PUT of keeping altered bytes', parseRateOption('--corrupt-rate'), 0)
    .option('--reject-rate <p>', 'probability per PUT of a 422 rejection', parseRateOption('--reject-rate'), 0)
    .option(
      '--timeout-rate <p>',
      'probability per request of holding it open without an answer',
      parseRateOption('--timeout-rate'),
      0,
    )
    .option('--latency-ms <n>', 'milliseconds added to every request', parseIntOption('--latency-ms', 0, 600_000), 0)
    .option('--seed <n>', 'makes the fault sequence repeatable', parseIntOption('--seed', -(2 ** 31), 2 ** 31 - 1))
    .action(
      action(async (flags: Flags) => {
        const token = flags.token ?? appEnv().RECORDING_SYSTEM_TOKEN;
        if (!token) throw new CliError('give --token or set RECORDING_SYSTEM_TOKEN', 2);
        const parsed = simulatorOptionsSchema.safeParse({ ...flags, token });
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new CliError(
            `--${String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`,
          );
        }
        const sim = await startSimulator(parsed.data);
        const faults = (['failRate', 'dropRate', 'corruptRate', 'rejectRate', 'timeoutRate'] as const)
          .filter((k) => flags[k] > 0)
          .map((k) => `${k}=${flags[k]}`);
        process.stdout.write(
          [
            `Recording-system simulator listening on ${sim.url}`,
            `  data: ${path.resolve(flags.dataDir)}`,
            `  faults: ${faults.length ? faults.join(' ') : 'none'}${flags.latencyMs ? `, latency ${flags.latencyMs} ms` : ''}${flags.seed !== undefined ? `, seed ${flags.seed}` : ''}`,
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
        await untilStopped();
        await sim.close();
        const stats = sim.stats();
        process.stdout.write(
          `Stopped. Holding ${stats.files} files; faults injected: ${JSON.stringify(stats.faults)}\n`,
        );
      }),
    );
}
