/**
 * The worker's observability endpoint: `GET /metrics` answers Prometheus text with image-sync's
 * `image_sync_*` metrics and everything the Temporal runtime's exporter serves (the SDK's
 * `temporal_*` metrics and the workflows' own); `GET /health` answers 200 while the worker polls
 * and 503 otherwise, with what it is doing (`starting: waiting for the ledger`, `not polling`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorText } from '../errors';
import type { Registry } from 'prom-client';

/** A registry of metrics to serve: the worker's (SyncMetrics) or the intake server's. */
export interface MetricsSource {
  registry: Registry;
  text(): Promise<string>;
}

export interface MetricsServerOptions {
  port: number;
  host?: string;
  metrics: MetricsSource;
  /** The Temporal runtime's Prometheus exporter, e.g. http://127.0.0.1:9464/metrics. */
  runtimeMetricsUrl?: string;
  /** Whether the worker polls its task queue, and what it does otherwise. */
  health: () => { ok: boolean; status: string };
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function runtimeText(url: string | undefined): Promise<string> {
  if (!url) return '';
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? await res.text() : `# Temporal runtime metrics unavailable: HTTP ${res.status}\n`;
  } catch (err) {
    return `# Temporal runtime metrics unavailable: ${errorText(err)}\n`;
  }
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (route === '/health') {
      const { ok, status } = opts.health();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status }));
      return;
    }
    if (route === '/metrics') {
      void Promise.all([opts.metrics.text(), runtimeText(opts.runtimeMetricsUrl)]).then(
        ([own, runtime]) => {
          res.writeHead(200, { 'Content-Type': opts.metrics.registry.contentType });
          res.end(`${own}${own.endsWith('\n') ? '' : '\n'}${runtime}`);
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`cannot collect metrics: ${errorText(err)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('GET /metrics or /health\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = !opts.host || opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
