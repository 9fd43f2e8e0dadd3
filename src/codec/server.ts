/**
 * A codec server: Temporal's `/encode` and `/decode` endpoints over image-sync's payload codec,
 * so the Web UI (`--ui-codec-endpoint`, or its "Codec Server" setting) and the Temporal CLI
 * (`--codec-endpoint`) show decrypted payloads. It holds the keys, so every `/encode` and
 * `/decode` must carry a credential the authenticator accepts (./auth.ts): without one the
 * answer is 401 and nothing is decoded. Browsers may call it from the configured origins only.
 *
 * `GET /health` answers 200 without a credential (for container health checks).
 * Request and answer bodies are `{ "payloads": [{ "metadata": { k: base64 }, "data": base64 }] }`.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { errorText } from '../errors';
import type { CodecAuthenticator } from './auth';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  port: number;
  host?: string;
  /** Origins allowed to call from a browser (the Web UI's); none when empty. */
  corsOrigins: string[];
  /** Decides who may encode and decode (see createCodecAuthenticator). */
  authenticate: CodecAuthenticator;
  /** Serve HTTPS with this certificate and key (PEM); the Web UI passes access tokens to https only. */
  tls?: { cert: Buffer | string; key: Buffer | string };
}

export interface CodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const handler: http.RequestListener = (req, res) => {
    const origin = req.headers.origin;
    if (origin && opts.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      // The Web UI sends its user's ID token as Authorization-Extras along with the access token.
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization, Authorization-Extras');
      res.setHeader('Vary', 'Origin');
    }
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const route = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (req.method === 'GET' && route === '/health') {
      send(200, { status: 'ok' });
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) {
      send(404, { error: 'POST /encode or /decode' });
      return;
    }
    void (async () => {
      const verdict = await opts.authenticate(req.headers.authorization);
      if (!verdict.ok) {
        // The body is not read: a caller without a credential learns nothing of what it sent.
        res.setHeader('WWW-Authenticate', 'Bearer realm="image-sync codec"');
        send(401, { error: `unauthorized: ${verdict.reason}` });
        req.resume();
        return;
      }
      let payloads: Payload[];
      try {
        const body = JSON.parse(await readBody(req)) as { payloads?: JsonPayload[] } | null;
        // Proto3 JSON leaves an empty list out: `{}` is no payloads (a signal without input).
        const list = body?.payloads ?? [];
        if (!Array.isArray(list)) throw new Error('payloads is not an array');
        payloads = list.map(fromJson);
      } catch (err) {
        send(400, { error: `bad request: ${errorText(err)}` });
        return;
      }
      try {
        const out = route === '/encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
        send(200, { payloads: out.map(toJson) });
      } catch (err) {
        send(400, { error: errorText(err) });
      }
    })();
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host === undefined || opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
