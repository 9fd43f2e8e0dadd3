/**
 * `image-sync submit ORDER --file NAME=PATH ...`: one submission to the intake server's API
 * (docs/intake-api.md), for scripts and tests. The submission carries an Idempotency-Key (--key,
 * or a new random one, printed), and the command retries it with the same key while the server
 * answers 409, 429 (after Retry-After), 503 or cannot be reached, up to --timeout: a retried
 * submission never causes a second delivery.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { Agent, fetch } from 'undici';
import { appEnv } from '../../config/env';
import { readSecretFile, SecretFileError } from '../../config/secret-files';
import { errorText } from '../../errors';
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE } from '../../intake/http/schema';
import { action, CliError, parseIntOption, printJson, type ErrorCode } from '../common';

interface Flags {
  file: { fileName: string; path: string }[];
  target?: string;
  key?: string;
  url?: string;
  tokenFile?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  timeout: number;
  json?: boolean;
}

/** `NAME=PATH`, or `PATH` alone (the name is then the path's last part). */
function collectFile(raw: string, previous: Flags['file'] = []): Flags['file'] {
  const eq = raw.indexOf('=');
  const fileName = eq >= 0 ? raw.slice(0, eq) : path.basename(raw);
  const filePath = eq >= 0 ? raw.slice(eq + 1) : raw;
  if (fileName === '' || filePath === '') throw new InvalidArgumentError('--file takes NAME=PATH (or PATH)');
  return [...previous, { fileName, path: filePath }];
}

function readPem(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${flag} ${file} cannot be read: ${errorText(err)}`, 2);
  }
}

function token(flags: Flags): string {
  if (flags.tokenFile) {
    try {
      return readSecretFile('--token-file', flags.tokenFile).trim();
    } catch (err) {
      if (err instanceof SecretFileError) throw new CliError(err.message, 2, { code: 'bad_config' });
      throw err;
    }
  }
  const fromEnv = appEnv().IMAGE_SYNC_INTAKE_TOKEN;
  if (!fromEnv)
    throw new CliError('no intake token: give --token-file FILE or set IMAGE_SYNC_INTAKE_TOKEN(_FILE)', 2, {
      code: 'bad_config',
    });
  return fromEnv;
}

interface ErrorBody {
  error?: { code?: string; message?: string; field?: string; errors?: unknown; retryAfterSeconds?: number };
}

/** Statuses after which the same submission is sent again. */
const RETRIED = new Set([409, 429, 503]);

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description(
      "submit files of an order to the intake server's API (IMAGE_SYNC_INTAKE_URL) for delivery as they appear; retried with the same Idempotency-Key, delivered once",
    )
    .argument('<orderId>', 'the order the files belong to')
    .requiredOption(
      '--file <NAME=PATH>',
      'a file: the name it gets at the recording system and its path as the server reads it (absolute, or relative to its first source root); repeatable',
      collectFile,
    )
    .option('--target <name>', 'the recording-system target of every file (the default target when absent)')
    .option('--key <key>', 'the Idempotency-Key (default: a new random one, printed); reuse it to retry safely')
    .option('--url <url>', 'the intake server (default IMAGE_SYNC_INTAKE_URL)')
    .option('--token-file <file>', 'a file holding the bearer token (default IMAGE_SYNC_INTAKE_TOKEN)')
    .option('--ca-file <file>', "the CA (PEM) of an https server's certificate")
    .option('--cert-file <file>', 'a client certificate (PEM), for a server asking for mutual TLS')
    .option('--key-file <file>', 'the private key (PEM) of --cert-file')
    .option(
      '--timeout <seconds>',
      'how long to retry while the server is busy (409, 429), away (503) or out of reach',
      parseIntOption('--timeout', 0, 3600),
      30,
    )
    .option('--json', 'print the answer as one JSON document')
    .action(
      action(async (orderId: string, flags: Flags) => {
        const key = flags.key ?? randomUUID();
        if (!IDEMPOTENCY_KEY.test(key)) throw new CliError(`--key ${IDEMPOTENCY_KEY_RULE}`, 2, { code: 'usage' });
        if (Boolean(flags.certFile) !== Boolean(flags.keyFile))
          throw new CliError('--cert-file and --key-file go together', 2, { code: 'usage' });
        const base = (flags.url ?? appEnv().IMAGE_SYNC_INTAKE_URL).replace(/\/+$/, '');
        const bearer = token(flags);
        const tls = {
          ...(flags.caFile ? { ca: readPem('--ca-file', flags.caFile) } : {}),
          ...(flags.certFile && flags.keyFile
            ? { cert: readPem('--cert-file', flags.certFile), key: readPem('--key-file', flags.keyFile) }
            : {}),
        };
        const dispatcher = Object.keys(tls).length > 0 ? new Agent({ connect: tls }) : undefined;
        const url = `${base}/v1/orders/${encodeURIComponent(orderId)}/files`;
        const body = JSON.stringify({
          files: flags.file.map((f) => ({ ...f, ...(flags.target ? { target: flags.target } : {}) })),
        });
        const deadline = Date.now() + flags.timeout * 1000;
        let delayMs = 500;
        try {
          for (;;) {
            let status: number;
            let text: string;
            let retryAfter: number | undefined;
            try {
              const res = await fetch(url, {
                method: 'POST',
                headers: {
                  authorization: `Bearer ${bearer}`,
                  'idempotency-key': key,
                  'content-type': 'application/json',
                },
                body,
                ...(dispatcher ? { dispatcher } : {}),
                signal: AbortSignal.timeout(60_000),
              });
              status = res.status;
              text = await res.text();
              const ra = Number(res.headers.get('retry-after'));
              retryAfter = Number.isFinite(ra) && ra > 0 ? ra : undefined;
            } catch (err) {
              if (Date.now() + delayMs > deadline)
                throw new CliError(`the intake server at ${base} cannot be reached: ${errorText(err)} (key ${key})`, 1);
              await new Promise((r) => setTimeout(r, delayMs));
              delayMs = Math.min(delayMs * 2, 5_000);
              continue;
            }
            let doc: unknown;
            try {
              doc = JSON.parse(text);
            } catch {
              doc = undefined;
            }
            if (status === 202) {
              const accepted = doc as { submissionId: string; files: number; replayed: boolean; statusUrl: string };
              const statusUrl = new URL(accepted.statusUrl, `${base}/`).toString();
              if (flags.json) printJson({ ...accepted, idempotencyKey: key, statusUrl });
              else
                process.stdout.write(
                  `Submitted ${accepted.files} file(s) of order ${orderId}: submission ${accepted.submissionId}, key ${key}${
                    accepted.replayed ? ' (this key was taken before: nothing new is delivered)' : ''
                  }\nStatus: ${statusUrl}\n`,
                );
              return;
            }
            const error = (doc as ErrorBody | undefined)?.error;
            const message = error?.message ?? `HTTP ${status}`;
            const wait = (retryAfter ?? delayMs / 1000) * 1000;
            if (RETRIED.has(status) && Date.now() + wait <= deadline) {
              await new Promise((r) => setTimeout(r, wait));
              delayMs = Math.min(delayMs * 2, 5_000);
              continue;
            }
            const details = {
              status,
              key,
              ...(error?.field ? { field: error.field } : {}),
              ...(error?.errors ? { errors: error.errors } : {}),
            };
            const refused = (code: ErrorCode) =>
              new CliError(`the intake server refused the submission: ${message}`, 2, { code, details });
            if (status === 400 || status === 413 || status === 415) throw refused('invalid_input');
            if (status === 422) throw refused('refused');
            if (status === 401) throw refused('bad_config');
            throw new CliError(
              `the submission was not taken: ${message}${RETRIED.has(status) ? ` (retried for ${flags.timeout} s; retry with --key ${key})` : ''}`,
              1,
              { details },
            );
          }
        } finally {
          await dispatcher?.close();
        }
      }),
    );
}
