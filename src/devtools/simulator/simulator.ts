/**
 * A recording system for local runs and tests. It serves the HTTP contract of
 * docs/recording-system-contract.md with node:http, keeps files under a data folder so they
 * survive a restart (see store.ts), and injects faults at configured rates.
 *
 * This file starts and stops the server; the settings are in options.ts, serving a request in
 * handler.ts, the routes, names and replies in protocol.ts, upload bodies in upload.ts.
 *
 * Routes (all answers are JSON; errors are `{ error, reason }`):
 *   PUT    /records/{orderId}/files/{fileName}  201 receipt | 200 receipt already held | 409 | 422 | 400;
 *                                               with `If-Match: <idempotency key>` it replaces only
 *                                               the copy written under that key: 412 otherwise
 *   GET    /records/{orderId}/files/{fileName}  200 receipt | 404
 *   DELETE /records/{orderId}/files/{fileName}  204 | 404; with `If-Match: <idempotency key>` (quotes
 *                                               allowed) only the copy written under that key is
 *                                               removed: 412 when the copy held carries another
 *                                               key (nothing is removed)
 *   GET    /files?cursor=&limit=                200 { files, nextCursor }: receipts ordered by orderId then
 *                                               fileName; limit defaults to 100, larger than 1000 is
 *                                               read as 1000; the cursor is opaque (it names the last
 *                                               receipt of the previous page)
 *   GET    /health                              200 { ok: true }, for readiness probes: no token needed,
 *                                               no latency and no fault
 * Other paths answer 404, other methods on a known path 405.
 *
 * Each request other than /health goes through, in order: the latency, the token check (401,
 * nothing changes), the route (404/405), the names (400), for a PUT its headers (400), then
 * the fault draw (see faults.ts). Requests refused before the draw draw nothing.
 *
 * Names: orderId and fileName are URL-decoded, then refused with 400 when empty, '.' or '..',
 * when holding '/', '\\', NUL or another control character, or longer than 200 UTF-8 bytes.
 *
 * PUT: the body is streamed to a temporary file while its sha256 and size are computed; it is
 * never held whole in memory. A missing or malformed X-Checksum-SHA256 (64 hex digits) or a
 * missing Idempotency-Key answers 400. A body whose sha256 differs from X-Checksum-SHA256
 * answers 422 with reason "checksum mismatch" and nothing is kept. When the file is already
 * held, the same checksum answers 200 with the original receipt (whatever the idempotency
 * key) and another checksum answers 409. A PUT with `If-Match: <idempotency key>` (quotes
 * allowed) replaces the copy held under that key and answers 201; 412 when the file is absent
 * or its copy carries another key (nothing is stored). PUTs and DELETEs of one file are
 * serialised, so concurrent PUTs of one file store it once: one 201, the others 200. A
 * conditional PUT or DELETE decides under the same lock, so nothing lands between its look and
 * its write.
 *
 * Faults:
 *   PUT                fail 503 | timeout | reject 422 | drop: 201 but nothing kept |
 *                      corrupt: the first byte is kept inverted (an empty body is kept as one
 *                      zero byte) and the receipt describes the bytes kept, so its sha256 differs
 *   GET, DELETE, list  fail 503 | timeout
 *   every request      latencyMs before anything else
 * faultMethods narrows the methods faults apply to (all three by default); for example
 * ['PUT'] fails uploads while receipts, listings and rollbacks still work. Requests of other
 * methods draw nothing. Latency applies whatever the methods.
 * fail, timeout and reject answer without keeping anything. drop and corrupt apply only when
 * a new file would be stored, after the checksum check (an upload of a file already held
 * answers 200 or 409 as usual, and the fault is not counted). A timeout reads and discards the
 * request body, then holds the answer until the client goes away, the simulator closes, or
 * timeoutHoldMs pass, when it answers 504.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SimulatorHandler, type FileUploads, type SimulatorStats } from './handler';
import { parseSimulatorOptions, type SimulatorFaults, type SimulatorOptions } from './options';
import { FileStore } from './store';

export interface RunningSimulator {
  /** Base URL for clients, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** Stops listening, drops open connections (held requests included) and waits for in-flight work. */
  close(): Promise<void>;
  stats(): SimulatorStats;
  /** The uploads of each file, by `orderId/fileName`: bodies received, copies kept, distinct senders. */
  uploadsByFile(): Map<string, FileUploads>;
  /** Changes fault settings from now on; throws on invalid values and then changes nothing. */
  setFaults(partial: Partial<SimulatorFaults>): void;
}

export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const options = parseSimulatorOptions(opts);
  const store = await FileStore.open(options.dataDir);
  const simulator = new SimulatorHandler(options, store);
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => simulator.serve(req, res));
  const port = await listen(server, options.port, options.host);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(options.host)}:${port}`,
    port,
    close: () => (closing ??= shutdown(server, simulator)),
    stats: () => simulator.stats(),
    uploadsByFile: () => simulator.uploadsByFile(),
    setFaults: (partial) => simulator.setFaults(partial),
  };
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function shutdown(server: http.Server, simulator: SimulatorHandler): Promise<void> {
  simulator.stopping.abort();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  await simulator.idle();
}

/** How clients reach a listening address: wildcard addresses are reached through loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
