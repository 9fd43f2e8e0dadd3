import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createCodecAuthenticator, hasCodecCredentials, type CodecAuthConfig } from '../../codec/auth';
import { EncryptionCodec } from '../../codec/encryption';
import { appEnv, type Env } from '../../config/env';
import { parseProductionEnv } from '../../config/production-env';
import { startCodecServer } from '../../codec/server';
import { errorText } from '../../errors';
import { action, CliError, listenOptions, untilStopped } from '../common';

export const DEFAULT_CODEC_SERVER_PORT = 8888;

interface Flags {
  port: number;
  host: string;
  corsOrigin: string[];
  tlsCert?: string;
  tlsKey?: string;
}

/** Who may call the codec server, from IMAGE_SYNC_CODEC_* (see src/codec/auth.ts). */
export function codecAuthConfig(env: Env = appEnv()): CodecAuthConfig {
  return {
    tokens: env.IMAGE_SYNC_CODEC_TOKENS,
    tokenHashes: env.IMAGE_SYNC_CODEC_TOKEN_HASHES,
    ...(env.IMAGE_SYNC_CODEC_JWKS_URL
      ? {
          jwt: {
            jwksUrl: env.IMAGE_SYNC_CODEC_JWKS_URL,
            issuer: env.IMAGE_SYNC_CODEC_JWT_ISSUER,
            audience: env.IMAGE_SYNC_CODEC_JWT_AUDIENCE,
          },
        }
      : {}),
  };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`${flag} ${file} cannot be read: ${errorText(err)}`, 2);
  }
}

export function registerCodecServer(program: Command): void {
  const command = program
    .command('codec-server')
    .description(
      "serve /encode and /decode with IMAGE_SYNC_ENCRYPTION_KEYS, for the Web UI's and CLI's codec endpoint, " +
        'to callers with a credential (IMAGE_SYNC_CODEC_TOKENS, IMAGE_SYNC_CODEC_TOKEN_HASHES or IMAGE_SYNC_CODEC_JWKS_URL)',
    );
  listenOptions(command, DEFAULT_CODEC_SERVER_PORT)
    .option(
      '--cors-origin <url>',
      'the origin of the Web UI allowed to call from a browser, e.g. http://localhost:8233 (repeatable)',
      (value: string, previous: string[]) => [...previous, value.replace(/\/+$/, '')],
      [] as string[],
    )
    .option(
      '--tls-cert <file>',
      'serve HTTPS with this certificate (PEM); the Web UI passes access tokens to https only',
    )
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .action(
      action(async (flags: Flags) => {
        const keys = parseProductionEnv().IMAGE_SYNC_ENCRYPTION_KEYS;
        if (!keys) throw new CliError('IMAGE_SYNC_ENCRYPTION_KEYS is not set: the codec server has no keys', 2);
        const auth = codecAuthConfig();
        if (!hasCodecCredentials(auth)) {
          throw new CliError(
            'no codec credential is configured (IMAGE_SYNC_CODEC_TOKENS, IMAGE_SYNC_CODEC_TOKEN_HASHES or IMAGE_SYNC_CODEC_JWKS_URL): the codec server would decrypt for anyone',
            2,
          );
        }
        if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey))
          throw new CliError('--tls-cert and --tls-key go together', 2);
        const tls =
          flags.tlsCert && flags.tlsKey
            ? { cert: readPem('--tls-cert', flags.tlsCert), key: readPem('--tls-key', flags.tlsKey) }
            : undefined;
        const server = await startCodecServer({
          codec: new EncryptionCodec(keys),
          port: flags.port,
          host: flags.host,
          corsOrigins: flags.corsOrigin,
          authenticate: createCodecAuthenticator(auth),
          tls,
        });
        const accepted = [
          (auth.tokens?.length ?? 0) + (auth.tokenHashes?.length ?? 0) > 0
            ? `${(auth.tokens?.length ?? 0) + (auth.tokenHashes?.length ?? 0)} bearer token(s)`
            : '',
          auth.jwt ? `JWTs from ${auth.jwt.jwksUrl}` : '',
        ].filter(Boolean);
        process.stdout.write(
          [
            `Codec server listening on ${server.url} (keys: ${keys.map((k) => k.id).join(', ')})`,
            `  accepts: ${accepted.join(' and ')}`,
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
