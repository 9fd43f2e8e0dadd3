import path from 'node:path';
import type { Command } from 'commander';
import { errorText } from '../../errors';
import { parsePostgresUrl } from '../../temporal/postgres-database';
import { startPostgresServer } from '../../temporal/postgres-server';
import { loadSearchAttributes } from '../../temporal/search-attributes';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from '../../temporal/server-binary';
import { action, CliError, parseIntOption, untilStopped } from '../common';

export const DEFAULT_SERVER_STATE_DIR = path.join('.image-sync', 'temporal-server');

interface TemporalServerFlags {
  postgres: string;
  port: number;
  uiPort: number;
  ui: boolean;
  ip: string;
  namespace: string;
  stateDir: string;
  historyShards: number;
  verbose?: boolean;
}

export function registerTemporalServer(program: Command): void {
  program
    .command('temporal-server')
    .description(
      `run the Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL (persistence and visibility), with image-sync's search attributes and the Web UI`,
    )
    .requiredOption(
      '--postgres <url>',
      'PostgreSQL database for Temporal, e.g. postgres://postgres@127.0.0.1:5432/temporal',
    )
    .option('--port <port>', 'gRPC frontend port', parseIntOption('--port', 1, 65535), 7233)
    .option('--ui-port <port>', 'Web UI port', parseIntOption('--ui-port', 1, 65535), 8233)
    .option('--no-ui', 'serve no Web UI')
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .option('--namespace <name>', 'namespace to create', 'default')
    .option('--state-dir <dir>', "folder of the server's generated configuration and logs", DEFAULT_SERVER_STATE_DIR)
    .option(
      '--history-shards <n>',
      'history shards (fixed when the database is first set up)',
      parseIntOption('--history-shards', 1, 16_384),
      4,
    )
    .option('--verbose', "show the server's own log")
    .action(
      action(async (opts: TemporalServerFlags) => {
        try {
          parsePostgresUrl(opts.postgres);
        } catch (err) {
          throw new CliError(errorText(err), 2);
        }
        const stateDir = path.resolve(opts.stateDir);
        const server = await startPostgresServer({
          postgresUrl: opts.postgres,
          port: opts.port,
          uiPort: opts.ui ? opts.uiPort : null,
          ip: opts.ip,
          namespace: opts.namespace,
          stateDir,
          historyShards: opts.historyShards,
          logLevel: opts.verbose ? 'info' : 'warn',
          output: opts.verbose ? process.stderr : undefined,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        const t = server.timings;
        const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
        process.stdout.write(
          [
            `Temporal server ${TEMPORAL_SERVER_VERSION} running on PostgreSQL (pid ${server.pid})`,
            `  gRPC address: ${server.address}   namespace: ${server.namespace}`,
            `  Web UI:       ${server.uiUrl ?? 'off'}${server.uiUrl ? ` (ui-server ${TEMPORAL_UI_SERVER_VERSION})` : ''}`,
            `  database:     ${server.database} (schemas temporal, temporal_visibility)`,
            `  config, logs: ${stateDir}`,
            `  search attributes: ${Object.keys(loadSearchAttributes()).join(', ')}`,
            `  ready in ${seconds(t.installMs + t.schemaMs + t.startMs + t.namespaceMs)}: install ${seconds(t.installMs)}, schemas ${seconds(t.schemaMs)}, start ${seconds(t.startMs)}, namespace and UI ${seconds(t.namespaceMs)}`,
            `Workers and commands: TEMPORAL_ADDRESS=${server.address}`,
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
        const stopped = await Promise.race([untilStopped(), server.exited.then(() => 'exited' as const)]);
        if (stopped === 'exited') {
          await server.stop();
          throw new Error(`the Temporal server exited unexpectedly (see ${server.logFile})`);
        }
        process.stdout.write('Stopping the Temporal server...\n');
        await server.stop();
        process.stdout.write('Stopped.\n');
      }),
    );
}
