/**
 * A TCP proxy in front of a recording system that notes when each byte from the client arrived
 * and how many requests it carried: what a rate limit is measured by, at the receiving end.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Arrival {
  at: number;
  bytes: number;
  requests: number;
}

export interface MeterProxy {
  url: string;
  /** Sets where requests go (the simulator's port). */
  forwardTo(port: number): void;
  arrivals: Arrival[];
  /** Bytes per second, and requests per second, between `from` and `to` (ms since epoch). */
  rate(from: number, to: number): { bytesPerSecond: number; requestsPerSecond: number };
  close(): Promise<void>;
}

const REQUEST_LINE = /(?:^|\r\n)(?:PUT|GET|DELETE|HEAD|POST) \/[^\r\n]* HTTP\/1\.1\r\n/g;

export async function startMeterProxy(): Promise<MeterProxy> {
  let upstream = 0;
  const arrivals: Arrival[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const remote = net.connect(upstream, '127.0.0.1');
    sockets.add(client).add(remote);
    client.on('data', (chunk: Buffer) => {
      const requests = chunk.toString('latin1').match(REQUEST_LINE)?.length ?? 0;
      arrivals.push({ at: Date.now(), bytes: chunk.length, requests });
      remote.write(chunk);
    });
    remote.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      remote.destroy();
      sockets.delete(client);
      sockets.delete(remote);
    };
    client.on('close', end).on('error', end);
    remote.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    forwardTo: (p) => {
      upstream = p;
    },
    arrivals,
    rate(from, to) {
      let bytes = 0;
      let requests = 0;
      for (const a of arrivals) {
        if (a.at < from || a.at > to) continue;
        bytes += a.bytes;
        requests += a.requests;
      }
      const seconds = (to - from) / 1000;
      return { bytesPerSecond: bytes / seconds, requestsPerSecond: requests / seconds };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
