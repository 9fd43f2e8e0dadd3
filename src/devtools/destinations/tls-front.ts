/**
 * The recording-system simulator behind TLS with client certificates: an HTTPS server that
 * requires a client certificate signed by the test CA and passes each request on to a
 * simulator. The first path segment names a namespace; each namespace has a simulator of its
 * own (started on first use), so tests sharing the front do not see each other's files.
 */
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startSimulator, type RunningSimulator } from '../simulator/simulator';
import type { TestPki } from './pki';

export interface RunningTlsFront {
  /** `https://127.0.0.1:PORT`; a target's URL is this plus `/<namespace>`. */
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startTlsFront(opts: { dir: string; token: string; pki: TestPki }): Promise<RunningTlsFront> {
  const simulators = new Map<string, Promise<RunningSimulator>>();
  const simulatorFor = (ns: string) => {
    let sim = simulators.get(ns);
    if (!sim) {
      sim = startSimulator({ dataDir: path.join(opts.dir, ns), token: opts.token, port: 0 });
      simulators.set(ns, sim);
    }
    return sim;
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const match = /^\/([A-Za-z0-9_-]+)(\/.*)$/.exec(req.url ?? '');
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    simulatorFor(match[1]!).then(
      (sim) => {
        const upstream = http.request(
          `${sim.url}${match[2]}`,
          { method: req.method, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      },
      () => res.writeHead(502).end(),
    );
  };
  let server: https.Server | null = null;
  let port = 0;
  const start = async () => {
    const s = https.createServer(
      {
        key: opts.pki.serverKey,
        cert: opts.pki.serverCert,
        ca: opts.pki.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      handler,
    );
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = null;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await closed;
  };
  await start();
  return {
    url: `https://127.0.0.1:${port}`,
    start,
    stop,
    close: async () => {
      await stop();
      for (const sim of simulators.values()) await (await sim).close();
    },
  };
}
