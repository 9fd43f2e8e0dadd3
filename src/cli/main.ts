/** The image-sync command line. Every command here works; each has --help. */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { appEnv, EnvError } from '../config/env';
import { printJson, reportError, wantsJson } from './common';
import { envHelpText } from '../config/env-docs';
import { EXIT_CODES } from './exit-codes';
import { registerCodecServer } from './commands/codec-server';
import { registerDemo } from './commands/demo';
import { registerDevServer } from './commands/dev-server';
import { registerIntakeServer } from './commands/intake-server';
import { registerList } from './commands/list';
import { registerReconcile } from './commands/reconcile';
import { registerRecordingSystem } from './commands/recording-system';
import { registerReport } from './commands/report';
import { registerSchedule } from './commands/schedule';
import { registerSignals } from './commands/signals';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerSubmit } from './commands/submit';
import { registerTemporalServer } from './commands/temporal-server';
import { registerWorker } from './commands/worker';

/** The groups of the top-level help, in the order shown; every command belongs to one. */
export const HELP_GROUPS = {
  Operate: [
    'start',
    'submit',
    'cancel',
    'pause',
    'resume',
    'retry',
    'set-concurrency',
    'set-limits',
    'reconcile',
    'schedule',
  ],
  Inspect: ['status', 'list', 'report'],
  'Run services': ['worker', 'intake-server', 'temporal-server', 'codec-server'],
  Develop: ['demo', 'dev-server', 'recording-system'],
} as const;

export type HelpGroup = keyof typeof HELP_GROUPS;

/** The help group of a command; a command in no group is a mistake caught by the tests. */
export function helpGroupOf(name: string): HelpGroup {
  for (const [group, names] of Object.entries(HELP_GROUPS) as [HelpGroup, readonly string[]][])
    if (names.includes(name)) return group;
  throw new Error(`command ${name} has no help group: add it to HELP_GROUPS in src/cli/main.ts`);
}

/** The version in package.json (src/cli/ and dist/cli/ both sit two folders below it). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The command line commander is parsing (commander keeps it, without typing it). */
function rawArgs(program: Command): string[] {
  return (program as unknown as { rawArgs?: string[] }).rawArgs ?? [];
}

export function buildProgram(): Command {
  const program: Command = new Command()
    .name('image-sync')
    .description('Durable, provable synchronization of order image files to their recording systems, on Temporal.')
    .version(packageVersion(), '-V, --version', 'print the version of image-sync')
    .showHelpAfterError('(add --help for usage)')
    // Usage errors (unknown option, bad value, missing argument) are bad input: exit code 2.
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        process.exit(0);
      process.exit(2);
    })
    .configureOutput({
      outputError: (text, write) => {
        const message = text.replace(/^error: /, '').trim();
        write(`image-sync: ${message}\n`);
        // With --json, the usage error is also the one JSON document on stdout.
        if (wantsJson(rawArgs(program).slice(2))) printJson({ error: { code: 'usage', message, exitCode: 2 } });
      },
    })
    // The configuration is parsed once, before any command runs (not for --help): a bad value
    // ends the process with one line naming the variable, exit code 2 (and, with --json, the
    // error document on stdout).
    .hook('preAction', (_program, actionCommand) => {
      try {
        appEnv();
      } catch (err) {
        if (!(err instanceof EnvError)) throw err;
        reportError(err, actionCommand.opts().json === true, { exitCode: 2, code: 'bad_config' });
        process.exit(2);
      }
    });
  for (const register of [
    registerDemo,
    registerDevServer,
    registerTemporalServer,
    registerRecordingSystem,
    registerWorker,
    registerStart,
    registerSubmit,
    registerStatus,
    registerSignals,
    registerReport,
    registerList,
    registerReconcile,
    registerSchedule,
    registerCodecServer,
    registerIntakeServer,
  ]) {
    register(program);
  }
  // The help lists the groups in HELP_GROUPS order: operate, inspect, run services, develop.
  const groups = Object.keys(HELP_GROUPS);
  const rank = (c: Command) => groups.indexOf(helpGroupOf(c.name()));
  for (const command of program.commands) command.helpGroup(`${helpGroupOf(command.name())}:`);
  (program.commands as Command[]).sort((a, b) => rank(a) - rank(b));
  program.addHelpText(
    'after',
    `\n${envHelpText()}\n\nExit codes: ${EXIT_CODES.map((e) => `${e.code} ${e.meaning.split(/[;(:]/)[0]!.trim()}`).join('; ')}.\nDocs: README.md and docs/ (docs/reference/ has every command and variable).`,
  );
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('image-sync.js') || process.argv[1]?.endsWith('image-sync')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.exitCode = reportError(err, wantsJson(process.argv.slice(2)));
    });
}
