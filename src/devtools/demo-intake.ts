/**
 * The demo's live submissions: an intake server in this process (docs/intake-api.md) with a
 * token made for the run, and a few files of one order submitted through its HTTP API while the
 * demo's batch runs, their state followed on the API's status endpoint until each has ended.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { createCodecAuthenticator } from '../codec/auth';
import { resolveSourceRoots } from '../intake/http/confine';
import { startIntakeServer } from '../intake/http/server';
import { createIntakeBackend } from '../intake/temporal-backend';
import type { Ledger } from '../ledger/port';
import { generateSampleBatch, sampleFileName, sampleOrderId } from './samples/sample-images';

/** States a file does not leave. */
const ENDED = new Set(['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED']);

export interface LiveSubmissionsOptions {
  client: Client;
  ledger: Ledger;
  taskQueue: string;
  /** The demo's state directory; the submitted files are written under it. */
  dir: string;
  /** Files submitted, one submission each. */
  count: number;
  say: (line: string) => void;
  /** Resolves when the demo is asked to stop. */
  stop: Promise<unknown>;
}

export interface LiveSubmissions {
  orderId: string;
  /** Each submitted file's last state once all have ended; undefined when stopped before. */
  done: Promise<Map<string, string> | undefined>;
  close(): Promise<void>;
}

interface OrderStatusBody {
  files: { fileName: string; state: string }[];
}

export async function startLiveSubmissions(opts: LiveSubmissionsOptions): Promise<LiveSubmissions> {
  const { say } = opts;
  const inbox = path.join(opts.dir, 'live-inbox');
  await rm(inbox, { recursive: true, force: true });
  await generateSampleBatch(inbox, { orders: 1, filesPerOrder: opts.count, seed: 7 });
  // Made for this run and never printed: the demo is the only caller.
  const token = randomBytes(24).toString('hex');
  const backend = createIntakeBackend({
    client: opts.client,
    ledger: opts.ledger,
    taskQueue: opts.taskQueue,
    policy: { maxResends: 3, resendBackoffMs: 500 },
  });
  const server = await startIntakeServer({
    backend,
    authenticate: createCodecAuthenticator({ tokens: [token] }),
    roots: await resolveSourceRoots([inbox]),
    port: 0,
    host: '127.0.0.1',
  });
  const orderId = `LIVE-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
  const auth = { authorization: `Bearer ${token}` };
  let stopped = false;
  void opts.stop.then(() => (stopped = true));

  async function submitAll(): Promise<void> {
    say(
      `Intake API ${server.url} (docs/intake-api.md): submitting ${opts.count} files of ${orderId} while the batch runs`,
    );
    for (let i = 0; i < opts.count; i++) {
      const fileName = sampleFileName(i);
      const res = await fetch(`${server.url}/v1/orders/${orderId}/files`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: JSON.stringify({ files: [{ fileName, path: `${sampleOrderId(0)}/${fileName}` }] }),
      });
      say(`  POST /v1/orders/${orderId}/files (${fileName}) → ${res.status}`);
      if (res.status !== 202) throw new Error(`the intake API answered ${res.status}: ${await res.text()}`);
    }
  }

  async function follow(): Promise<Map<string, string> | undefined> {
    await submitAll();
    const seen = new Map<string, string>();
    while (!stopped) {
      const res = await fetch(`${server.url}/v1/orders/${orderId}`, { headers: auth });
      if (res.ok) {
        const status = (await res.json()) as OrderStatusBody;
        for (const f of status.files) {
          if (seen.get(f.fileName) === f.state) continue;
          seen.set(f.fileName, f.state);
          say(`  live ${orderId}/${f.fileName}: ${f.state}`);
        }
        if (status.files.length === opts.count && status.files.every((f) => ENDED.has(f.state))) return seen;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    return undefined;
  }

  const done = follow();
  // Awaited by the demo once its batch has ended; a failure before that is not unhandled.
  done.catch(() => undefined);
  return {
    orderId,
    done,
    async close() {
      await server.stop(5_000);
      await backend.close();
    },
  };
}
