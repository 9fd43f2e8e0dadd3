import type { Command } from 'commander';
import { EncryptionCodec } from '../../codec/encryption';
import { parseProductionEnv } from '../../config/production-env';
import { startCodecServer } from '../../codec/server';
import { action, CliError, listenOptions, untilStopped } from '../common';

export const DEFAULT_CODEC_SERVER_PORT = 8888;

interface Flags {
  port: number;
  host: string;
  corsOrigin: string[];
}

export function registerCodecServer(program: Command): void {
  const command = program
    .command('codec-server')
    .description(
      "serve /encode and /decode with IMAGE_SYNC_ENCRYPTION_KEYS, for the Web UI's and CLI's codec endpoint",
    );
  listenOptions(command, DEFAULT_CODEC_SERVER_PORT)
    .option(
      '--cors-origin <url>',
      'an origin allowed to call from a browser, e.g. the Web UI http://localhost:8233 (repeatable)',
      (value: string, previous: string[]) => [...previous, value.replace(/\/+$/, '')],
      [] as string[],
    )
    .action(
      action(async (flags: Flags) => {
        const keys = parseProductionEnv().IMAGE_SYNC_ENCRYPTION_KEYS;
        if (!keys) throw new CliError('IMAGE_SYNC_ENCRYPTION_KEYS is not set: the codec server has no keys', 2);
        const server = await startCodecServer({
          codec: new EncryptionCodec(keys),
          port: flags.port,
          host: flags.host,
          corsOrigins: flags.corsOrigin,
        });
        process.stdout.write(
          [
            `Codec server listening on ${server.url} (keys: ${keys.map((k) => k.id).join(', ')})`,
            `  CORS origins: ${flags.corsOrigin.length ? flags.corsOrigin.join(' ') : 'none'}`,
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
        await untilStopped();
        await server.close();
      }),
    );
}
