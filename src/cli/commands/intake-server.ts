/**
 * `image-sync intake-server`: the real-time intake's HTTP API (docs/intake-api.md) in front of
 * the intake's workflow side (src/intake/temporal-backend.ts). It refuses to start without a
 * token or a source root (exit 2): an API without them would take anyone's submission, or of
 * any file. Temporal may be away at start: submissions are then answered 503 and /health says
 * so, until it answers.
 *
 * SIGTERM or SIGINT: the graceful stop. New requests are refused, those in flight finish within
 * IMAGE_SYNC_SHUTDOWN_GRACE_MS, then the process exits 0.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { createCodecAuthenticator } from '../../codec/auth';
import { appEnv } from '../../config/env';
import { targetNamesFromEnv } from '../../config/target-names';
import { errorText } from '../../errors';
import type { IntakeBackend } from '../../intake/backend';
import { resolveSourceRoots, SourceRootError } from '../../intake/http/confine';
import { IntakeMetrics } from '../../intake/http/metrics';
import { startIntakeServer } from '../../intake/http/server';
import { createIntakeBackend } from '../../intake/temporal-backend';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { createPinoLogger } from '../../observability/logger';
import { startMetricsServer, type MetricsServer } from '../../observability/metrics-server';
import { temporalSettings } from '../../temporal/connection';
import { action, CliError, notifyOptions, parseIntOption, untilStopped } from '../common';
import { untilSettledOrLedgerLost } from '../service';
import { processLogFormat } from './worker';

interface Flags {
  port?: number;
  host: string;
  metricsPort?: number;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
}

/** The version in package.json (src/cli/commands/ and dist/cli/commands/ sit three folders below it). */
function version(): string {
  return (
    JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }
  ).version;
}

/** How often the readiness the metrics port's /health reports is refreshed (ms). */
const READINESS_EVERY_MS = 5_000;

function readPem(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`${what} ${file} cannot be read: ${errorText(err)}`, 2, { code: 'bad_config' });
  }
}

export function registerIntakeServer(program: Command): void {
  program
    .command('intake-server')
    .description(
      'serve the intake API (POST /v1/orders/{orderId}/files, GET /v1/orders/{orderId}, /v1/openapi.json) to callers with a token of IMAGE_SYNC_INTAKE_TOKENS, for files inside IMAGE_SYNC_INTAKE_ROOTS',
    )
    .option(
      '--port <port>',
      'port to listen on (0 picks one; default IMAGE_SYNC_INTAKE_PORT)',
      parseIntOption('--port', 0, 65535),
    )
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics and /health on this port (default IMAGE_SYNC_METRICS_PORT; off when neither)',
      parseIntOption('--metrics-port', 0, 65535),
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM) (default IMAGE_SYNC_INTAKE_TLS_CERT)')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert (default IMAGE_SYNC_INTAKE_TLS_KEY)')
    .option(
      '--client-ca <file>',
      'mutual TLS: take only clients with a certificate signed by this CA (PEM) (default IMAGE_SYNC_INTAKE_CLIENT_CA)',
    )
    .action(
      action(async (flags: Flags) => {
        const env = appEnv();
        const tokens = env.IMAGE_SYNC_INTAKE_TOKENS;
        if (tokens.length === 0)
          throw new CliError(
            "no intake token is configured (IMAGE_SYNC_INTAKE_TOKENS or IMAGE_SYNC_INTAKE_TOKENS_FILE): the intake would take anyone's submission",
            2,
            { code: 'bad_config' },
          );
        let roots;
        try {
          roots = await resolveSourceRoots(env.IMAGE_SYNC_INTAKE_ROOTS);
        } catch (err) {
          if (err instanceof SourceRootError) throw new CliError(err.message, 2, { code: 'bad_config' });
          throw err;
        }
        const targets = targetNamesFromEnv();
        if (!targets.ok) throw new CliError(targets.reason, 2, { code: 'bad_config' });
        const certFile = flags.tlsCert ?? env.IMAGE_SYNC_INTAKE_TLS_CERT;
        const keyFile = flags.tlsKey ?? env.IMAGE_SYNC_INTAKE_TLS_KEY;
        const caFile = flags.clientCa ?? env.IMAGE_SYNC_INTAKE_CLIENT_CA;
        if (Boolean(certFile) !== Boolean(keyFile))
          throw new CliError('--tls-cert and --tls-key (IMAGE_SYNC_INTAKE_TLS_CERT, _KEY) go together', 2, {
            code: 'bad_config',
          });
        if (caFile && !certFile)
          throw new CliError('--client-ca (mutual TLS) needs --tls-cert and --tls-key', 2, { code: 'bad_config' });
        const tls =
          certFile && keyFile
            ? {
                cert: readPem('--tls-cert', certFile),
                key: readPem('--tls-key', keyFile),
                ...(caFile ? { clientCa: readPem('--client-ca', caFile) } : {}),
              }
            : undefined;

        const logger = createPinoLogger(processLogFormat(), env.IMAGE_SYNC_LOG_LEVEL);
        const settings = temporalSettings();
        // Lazy: the server starts while Temporal is away, and answers 503 until it is back.
        const connection = Connection.lazy({ ...settings.connectionOptions, connectTimeout: 5_000 });
        const client = new Client({ connection, namespace: settings.namespace, dataConverter: settings.dataConverter });
        let ledger;
        try {
          ledger = await openLedger(ledgerUrlFromEnv());
        } catch (err) {
          await connection.close();
          throw err;
        }
        const backend: IntakeBackend = createIntakeBackend({
          client,
          ledger,
          taskQueue: settings.taskQueue,
          maxWaiting: env.IMAGE_SYNC_INTAKE_MAX_WAITING,
          maxWaitingBytes: env.IMAGE_SYNC_INTAKE_MAX_WAITING_BYTES,
          notify: notifyOptions(),
          onClose: async () => {
            await ledger.close();
            await connection.close();
          },
        });
        const metrics = new IntakeMetrics();
        let server;
        try {
          server = await startIntakeServer({
            backend,
            authenticate: createCodecAuthenticator({ tokens }),
            roots,
            port: flags.port ?? env.IMAGE_SYNC_INTAKE_PORT,
            host: flags.host,
            maxBodyBytes: env.IMAGE_SYNC_INTAKE_MAX_BODY_BYTES,
            targets: targets.targets,
            tls,
            metrics,
            logger,
            version: version(),
          });
        } catch (err) {
          await backend.close();
          throw err;
        }

        let readiness = { ok: false, status: 'starting' };
        let refreshing: Promise<void> | undefined;
        const refresh = () =>
          (refreshing ??= (async () => {
            const r = await backend.ready().catch((err: unknown) => ({ ok: false, reason: errorText(err) }));
            readiness = { ok: r.ok, status: r.ok ? 'ready' : (r.reason ?? 'not ready') };
          })().finally(() => {
            refreshing = undefined;
          }));
        await refresh();
        const poll = setInterval(() => void refresh(), READINESS_EVERY_MS);
        const metricsPort = flags.metricsPort ?? env.IMAGE_SYNC_METRICS_PORT;
        let metricsServer: MetricsServer | undefined;
        if (metricsPort !== undefined)
          metricsServer = await startMetricsServer({ port: metricsPort, metrics, health: () => readiness });

        process.stdout.write(
          [
            `Intake server listening on ${server.url} (${tokens.length} token(s)${tls?.clientCa ? ', client certificates required' : ''})`,
            `  source roots: ${roots.map((r) => r.given).join(' ')}`,
            `  targets: ${targets.targets.names.join(', ')}; task queue ${settings.taskQueue}; ${readiness.ok ? 'Temporal and the ledger answer' : `not ready: ${readiness.status}`}`,
            ...(metricsServer ? [`  metrics: ${metricsServer.url}/metrics`] : []),
            '',
          ].join('\n'),
        );
        // A ledger that can no longer vouch for its writes (Ledger.lost) stops the server too, exit 1:
        // started again, it opens the ledger as the disk holds it.
        const { value: signal, lost } = await untilSettledOrLedgerLost(ledger, [untilStopped()]);
        clearInterval(poll);
        const graceMs = env.IMAGE_SYNC_SHUTDOWN_GRACE_MS;
        if (lost) logger.error({ error: lost.message }, 'intake server stopping: its ledger is lost');
        logger.info(
          { signal: signal ?? 'ledger lost', inFlight: server.inFlight(), graceMs },
          'intake server stopping',
        );
        const { unfinished } = await server.stop(graceMs);
        await metricsServer?.close();
        // The backend's connection is closed only once no readiness check uses it.
        await refreshing;
        await backend.close();
        logger.info({ unfinished }, 'intake server stopped');
        process.stdout.write(`Intake server stopped${unfinished > 0 ? ` (${unfinished} request(s) cut off)` : ''}\n`);
        if (lost) throw lost;
      }),
    );
}
