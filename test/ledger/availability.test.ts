/**
 * The ledger when its database fails: PostgreSQL restarted, stopped, or its connections
 * dropped (on a private cluster, never the machine's main one), a commit whose answer is lost
 * (through a proxy that cuts the connection after the server's reply), and SQLite locked by
 * another process or full.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isLedgerUnavailableError,
  isTransientPgError,
  LedgerUnavailableError,
  openLedger,
  sqliteUnavailability,
  type Ledger,
  type OpenInteraction,
} from '../../src/ledger';
import { ledgerSql, lockSqliteLedger } from '../../src/ledger/testing';
import { createPrivateCluster, privateClusterUnavailableReason, type PrivateCluster } from '../helpers/pg-cluster';

function interaction(batchId: string, interactionId: string): OpenInteraction {
  return {
    interactionId,
    batchId,
    orderId: 'order-1',
    fileName: `${interactionId}.png`,
    target: 'default',
    sourcePath: '/data/order-1/scan.png',
    sha256: 'ab'.repeat(32),
    sizeBytes: 1234,
    status: 'SENDING',
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('transient error classification', () => {
  it.each([
    [{ code: '57P01', message: 'terminating connection due to administrator command' }, true],
    [{ code: '57P02', message: 'crash shutdown' }, true],
    [{ code: '57P03', message: 'the database system is starting up' }, true],
    [{ code: '08006', message: 'connection failure' }, true],
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' }, true],
    [{ code: 'ECONNRESET', message: 'read ECONNRESET' }, true],
    [{ message: 'Connection terminated unexpectedly' }, true],
    [{ code: '23505', message: 'duplicate key value violates unique constraint' }, false],
    [{ code: '42P01', message: 'relation "x" does not exist' }, false],
    [{ code: '28P01', message: 'password authentication failed' }, false],
  ])('%j transient: %s', (fields, expected) => {
    expect(isTransientPgError(Object.assign(new Error(fields.message), fields))).toBe(expected);
  });

  it('sees ECONNREFUSED inside an AggregateError (a connect that tried several addresses)', () => {
    const inner = Object.assign(new Error('connect ECONNREFUSED ::1:5'), { code: 'ECONNREFUSED' });
    expect(isTransientPgError(new AggregateError([inner], ''))).toBe(true);
  });

  it.each([
    ['SQLITE_BUSY', 'locked'],
    ['SQLITE_BUSY_SNAPSHOT', 'locked'],
    ['SQLITE_LOCKED', 'locked'],
    ['SQLITE_FULL', 'full'],
    ['SQLITE_IOERR_WRITE', 'io'],
    ['SQLITE_CONSTRAINT_UNIQUE', undefined],
  ])('%s is %s', (code, kind) => {
    expect(sqliteUnavailability(Object.assign(new Error('x'), { code }))?.kind).toBe(kind);
  });
});

const clusterReason = privateClusterUnavailableReason();

describe.skipIf(clusterReason !== undefined)(
  `ledger on a PostgreSQL that restarts${clusterReason ? ` (skipped: ${clusterReason})` : ''}`,
  () => {
    let cluster: PrivateCluster;
    let ledger: Ledger;
    let url: string;

    beforeAll(async () => {
      cluster = await createPrivateCluster();
      // Trust authentication ignores the password; it is here to prove errors never show it.
      url = `postgres://postgres:s3cret-pw@127.0.0.1:${cluster.port}/postgres?schema=ledger_${randomUUID().slice(0, 8)}`;
      ledger = await openLedger(url, { retry: { maxElapsedMs: 20_000, initialDelayMs: 100, maxDelayMs: 500 } });
    });

    afterAll(async () => {
      await ledger?.close().catch(() => undefined);
      cluster?.drop();
    });

    it('keeps writing through a restart: every write lands once, the process keeps running', async () => {
      const batchId = `b-${randomUUID().slice(0, 8)}`;
      await ledger.ensureBatch({ batchId, workflowId: `wf-${batchId}`, total: 60, state: 'RUNNING' });
      // A connection held checked out without a query when the server goes away: pg emits
      // 'error' on that client, which ends the process unless the ledger listens.
      const held = ledgerSql(ledger).holdConnection(4000);
      const heldOutcome = held.then(
        () => 'ok',
        (e: unknown) => `failed: ${(e as Error).message}`,
      );

      const writes: Promise<unknown>[] = [];
      let restartMs = 0;
      for (let n = 0; n < 60; n++) {
        const id = `${batchId}-${n}`;
        writes.push(
          ledger
            .openInteraction(interaction(batchId, id))
            .then(() => ledger.appendEvent({ interactionId: id, eventKey: 'sent', kind: 'SENT' }))
            .then(() => ledger.updateInteraction(id, { status: 'RECORDED' })),
        );
        if (n === 20) restartMs = cluster.restart();
        await sleep(20);
      }
      await Promise.all(writes);
      await heldOutcome;
      expect(restartMs).toBeGreaterThan(0);

      const rows = await ledger.listInteractions(batchId);
      expect(rows).toHaveLength(60);
      expect(rows.every((r) => r.status === 'RECORDED')).toBe(true);
      const events = await ledgerSql(ledger).query<{ n: number }>`
        select count(*)::int as n from interaction_events e join interactions i using (interaction_id)
        where i.batch_id = ${batchId}`;
      expect(events[0]?.n).toBe(60);
      console.info(`private cluster restart took ${restartMs} ms`);
    });

    it('keeps writing when the server drops every connection (a failover)', async () => {
      const batchId = `b-${randomUUID().slice(0, 8)}`;
      await ledger.ensureBatch({ batchId, workflowId: `wf-${batchId}`, total: 1, state: 'RUNNING' });
      const dropped = await cluster.dropConnections();
      expect(dropped).toBeGreaterThan(0);
      await ledger.updateBatch(batchId, { recorded: 1 });
      expect((await ledger.getBatch(batchId))?.recorded).toBe(1);
    });

    it('waits out a stop shorter than its retry window', async () => {
      const batchId = `b-${randomUUID().slice(0, 8)}`;
      cluster.stop();
      const t0 = Date.now();
      const write = ledger.ensureBatch({ batchId, workflowId: `wf-${batchId}`, total: 3, state: 'RUNNING' });
      await sleep(3000);
      cluster.start();
      await write;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
      expect((await ledger.getBatch(batchId))?.total).toBe(3);
    });

    it('throws LedgerUnavailableError naming the database, never the password, when the stop lasts', async () => {
      const short = await openLedger(url, { retry: { maxElapsedMs: 1500, initialDelayMs: 100, maxDelayMs: 500 } });
      try {
        cluster.stop();
        const error = await short.ensureBatch({ batchId: 'never', workflowId: 'wf', total: 1, state: 'RUNNING' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(LedgerUnavailableError);
        const message = (error as Error).message;
        expect(message).toContain(`PostgreSQL at 127.0.0.1:${cluster.port}/postgres`);
        expect(message).toContain('ensureBatch');
        expect(message).toMatch(/ECONNREFUSED|57P0|terminat/);
        expect(message).not.toContain('s3cret');
        expect((error as Error).name).toBe('LedgerUnavailableError');
        expect(isLedgerUnavailableError(error)).toBe(true);
        expect(isLedgerUnavailableError(new Error('other'))).toBe(false);
      } finally {
        cluster.start();
        await short.close();
      }
      // The server is back: the same ledger object works again.
      const batchId = `b-${randomUUID().slice(0, 8)}`;
      await ledger.ensureBatch({ batchId, workflowId: 'wf', total: 1, state: 'RUNNING' });
      expect(await ledger.getBatch(batchId)).toBeDefined();
    });

    it('does not retry what a retry cannot fix', async () => {
      const error = await ledgerSql(ledger).query`select * from no_such_table`.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTransientPgError(error)).toBe(false);
    });

    describe('a commit whose answer is lost', () => {
      let proxy: CuttingProxy;
      let viaProxy: Ledger;
      beforeAll(async () => {
        proxy = await cuttingProxy(cluster.port);
        viaProxy = await openLedger(url.replace(`:${cluster.port}/`, `:${proxy.port}/`), {
          retry: { maxElapsedMs: 10_000, initialDelayMs: 50, maxDelayMs: 200 },
        });
      });
      afterAll(async () => {
        await viaProxy?.close().catch(() => undefined);
        proxy?.close();
      });

      it.each([
        ['openInteraction', /insert into "interactions"/],
        ['appendEvent', /insert into "interaction_events"/],
        ['recordRollback', /insert into "rollbacks"/],
        ['updateInteraction', /update "interactions"/],
      ] as const)('%s, retried after its connection dropped with the commit done, writes once', async (op, pattern) => {
        const batchId = `b-${randomUUID().slice(0, 8)}`;
        const id = `${batchId}-x`;
        if (op !== 'openInteraction') await viaProxy.openInteraction(interaction(batchId, id));
        proxy.cutAfterReplyTo(pattern);
        let seq: number | undefined;
        if (op === 'openInteraction') seq = (await viaProxy.openInteraction(interaction(batchId, id))).seq;
        if (op === 'appendEvent') await viaProxy.appendEvent({ interactionId: id, eventKey: 'k', kind: 'SENT' });
        if (op === 'updateInteraction') await viaProxy.updateInteraction(id, { status: 'RECORDED', resends: 1 });
        if (op === 'recordRollback')
          await viaProxy.recordRollback({
            interactionId: id,
            batchId,
            orderId: 'order-1',
            fileName: `${id}.png`,
            reason: 'test',
            status: 'DONE',
            attempts: 1,
          });
        expect(proxy.cuts).toBe(1);

        const rows = await ledger.listInteractions(batchId);
        expect(rows).toHaveLength(1);
        if (seq !== undefined) expect(rows[0]?.seq).toBe(seq);
        if (op === 'updateInteraction') expect(rows[0]).toMatchObject({ status: 'RECORDED', resends: 1 });
        if (op === 'appendEvent') expect(await ledger.listEvents(id)).toHaveLength(1);
        if (op === 'recordRollback') expect(await ledger.listRollbacks(batchId)).toHaveLength(1);
      });
    });
  },
);

interface CuttingProxy {
  port: number;
  /** Connections cut since the last `cutAfterReplyTo`. */
  cuts: number;
  /** The next reply to a client message matching `pattern` is dropped and the connection cut. */
  cutAfterReplyTo(pattern: RegExp): void;
  close(): void;
}

/**
 * A TCP proxy in front of PostgreSQL that can cut a connection after the server has answered a
 * statement (so the statement took effect) but before the answer reaches the client.
 */
async function cuttingProxy(serverPort: number): Promise<CuttingProxy> {
  let armed: RegExp | undefined;
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(serverPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let pendingCut = false;
    client.on('data', (chunk) => {
      if (armed && armed.test(chunk.toString('latin1'))) {
        armed = undefined;
        pendingCut = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (pendingCut) {
        state.cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get cuts() {
      return state.cuts;
    },
    cutAfterReplyTo: (pattern) => {
      state.cuts = 0;
      armed = pattern;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('ledger on a SQLite file that is locked or full', () => {
  let dir: string;
  let file: string;
  let ledger: Ledger;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-avail-'));
    file = path.join(dir, 'ledger.db');
    ledger = await openLedger(`sqlite:${file}`, { retry: { maxElapsedMs: 1000, initialDelayMs: 50, maxDelayMs: 200 } });
  });

  afterAll(async () => {
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a file locked by another writer: "ledger database is locked", and nothing half-written', async () => {
    const batchId = `b-${randomUUID().slice(0, 8)}`;
    await ledger.ensureBatch({ batchId, workflowId: 'wf', total: 1, state: 'RUNNING' });
    const other = lockSqliteLedger(`sqlite:${file}`);
    try {
      const error = await ledger.openInteraction(interaction(batchId, `${batchId}-1`)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LedgerUnavailableError);
      expect((error as Error).message).toContain('ledger database is locked');
      expect((error as Error).message).toContain(`SQLite file ${file}`);
      expect((error as LedgerUnavailableError).code).toMatch(/^SQLITE_BUSY/);
    } finally {
      other.release();
    }
    expect(await ledger.listInteractions(batchId)).toHaveLength(0);
    await ledger.openInteraction(interaction(batchId, `${batchId}-1`));
    expect(await ledger.listInteractions(batchId)).toHaveLength(1);
  });

  it('a full database: "disk full", the failed write leaves nothing, later writes work', async () => {
    const batchId = `b-${randomUUID().slice(0, 8)}`;
    const id = `${batchId}-1`;
    await ledger.openInteraction(interaction(batchId, id));
    const [count] = await ledgerSql(ledger).query<{ page_count: number }>`pragma page_count`;
    const pages = count!.page_count;
    await ledgerSql(ledger).raw(`pragma max_page_count = ${pages}`);
    let error: unknown;
    try {
      for (let n = 0; n < 500 && !error; n++) {
        await ledger
          .appendEvent({ interactionId: id, eventKey: `e${n}`, kind: 'SENT', detail: { pad: 'x'.repeat(1500) } })
          .catch((e: unknown) => {
            error = e;
          });
      }
    } finally {
      await ledgerSql(ledger).raw('pragma max_page_count = 1073741823');
    }
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect((error as Error).message).toContain('disk full');
    expect((error as LedgerUnavailableError).code).toBe('SQLITE_FULL');
    const events = await ledger.listEvents(id);
    const keys = new Set(events.map((e) => e.id));
    expect(keys.size).toBe(events.length);
    await ledger.appendEvent({ interactionId: id, eventKey: 'after', kind: 'VERIFIED' });
    expect((await ledger.listEvents(id)).at(-1)?.kind).toBe('VERIFIED');
  });
});
