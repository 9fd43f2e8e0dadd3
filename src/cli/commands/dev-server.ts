import path from 'node:path';
import type { Command } from 'commander';
import { startDevServer } from '../../temporal/dev-server';
import { loadSearchAttributes } from '../../temporal/search-attributes';
import { action, parseIntOption, untilStopped } from '../common';

export const DEFAULT_DEV_DB = path.join('.image-sync', 'temporal.db');

interface DevServerFlags {
  dbFile: string;
  port: number;
  uiPort: number;
  ip: string;
  verbose?: boolean;
  uiCodecEndpoint?: string;
}

export function registerDevServer(program: Command): void {
  program
    .command('dev-server')
    .description("run Temporal's dev server with a persistent SQLite file and image-sync's search attributes")
    .option('--db-file <file>', 'SQLite file that keeps workflows across restarts', DEFAULT_DEV_DB)
    .option('--port <port>', 'gRPC port', parseIntOption('--port', 1, 65535), 7233)
    .option('--ui-port <port>', 'Web UI port', parseIntOption('--ui-port', 1, 65535), 8233)
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .option('--verbose', "show the server's own log")
    .option(
      '--ui-codec-endpoint <url>',
      'codec server the Web UI decodes payloads through (default: $TEMPORAL_CODEC_ENDPOINT)',
    )
    .action(
      action(async (opts: DevServerFlags) => {
        const server = await startDevServer({
          uiCodecEndpoint: opts.uiCodecEndpoint ?? (process.env.TEMPORAL_CODEC_ENDPOINT || undefined),
          dbFile: opts.dbFile,
          port: opts.port,
          uiPort: opts.uiPort,
          ip: opts.ip,
          logLevel: opts.verbose ? 'info' : 'error',
          output: opts.verbose ? process.stderr : undefined,
        });
        const keys = Object.keys(loadSearchAttributes());
        process.stdout.write(
          [
            `Temporal dev server running (pid ${server.pid}, ${server.cliPath})`,
            `  gRPC address: ${server.address}`,
            `  Web UI:       ${server.uiUrl}`,
            `  database:     ${path.resolve(opts.dbFile)}`,
            `  search attributes: ${keys.join(', ')}`,
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
        const stopped = await Promise.race([untilStopped(), server.exited.then(() => 'exited' as const)]);
        if (stopped === 'exited') throw new Error('the Temporal dev server exited unexpectedly');
        process.stdout.write('Stopping the Temporal dev server...\n');
        await server.stop();
        process.stdout.write('Stopped.\n');
      }),
    );
}
