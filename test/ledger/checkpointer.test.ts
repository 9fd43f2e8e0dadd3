/**
 * WAL checkpoints of a SQLite ledger on a thread of their own: the ledger's connection makes none
 * (wal_autocheckpoint = 0); every so many commits the thread copies the WAL back into the
 * database file and the WAL starts over; when the thread cannot run, the connection checkpoints
 * by itself again; the ledger closes the thread before its own connection.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/ledger';
import { BackgroundCheckpointer, CHECKPOINT_EVERY_COMMITS } from '../../src/ledger/checkpointer';
import { ledgerSql } from '../../src/ledger/testing';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';

const EVERY = 20;
const ROW = Buffer.alloc(4096, 7);

let dir: string;
let db: Database.Database | undefined;
let checkpointer: BackgroundCheckpointer | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-checkpoints-'));
});
afterEach(async () => {
  await checkpointer?.close();
  checkpointer = undefined;
  db?.close();
  db = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function walDatabase(): { file: string; database: Database.Database } {
  const file = path.join(dir, 'ledger.db');
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.exec('create table t (id integer primary key, body blob)');
  db = database;
  return { file, database };
}

/** `n` commits of one 4 KB row each, each told to the checkpointer. */
function commit(database: Database.Database, c: BackgroundCheckpointer, n: number): void {
  const insert = database.prepare('insert into t (body) values (?)');
  for (let i = 0; i < n; i++) {
    insert.run(ROW);
    c.committed();
  }
}

describe('the background checkpointer', () => {
  it('turns off the connection’s own checkpoints and copies the WAL back every so many commits, so the WAL starts over', async () => {
    const { file, database } = walDatabase();
    checkpointer = new BackgroundCheckpointer(database, file, { everyCommits: EVERY, busyTimeoutMs: 5000 });
    expect(database.pragma('wal_autocheckpoint', { simple: true })).toBe(0);

    let done = checkpointer.nextCheckpoint();
    commit(database, checkpointer, EVERY);
    const first = await done;
    expect(first).toBeDefined();
    expect(first!.log).toBeGreaterThanOrEqual(EVERY);
    expect(first!.checkpointed).toBe(first!.log);
    const walAfterOneRound = statSync(`${file}-wal`).size;

    for (let round = 0; round < 5; round++) {
      done = checkpointer.nextCheckpoint();
      commit(database, checkpointer, EVERY);
      expect((await done)!.checkpointed).toBeGreaterThan(0);
    }
    expect(checkpointer.checkpoints).toBe(6);
    // Six rounds of writes; the WAL reused its start after each checkpoint instead of growing sixfold.
    expect(statSync(`${file}-wal`).size).toBeLessThan(walAfterOneRound * 2);
    expect(database.prepare('select count(*) as n from t').get()).toEqual({ n: 6 * EVERY });
  });

  it('asks for no second checkpoint while one runs, and none before the next so many commits', async () => {
    const { file, database } = walDatabase();
    checkpointer = new BackgroundCheckpointer(database, file, { everyCommits: EVERY, busyTimeoutMs: 5000 });
    const done = checkpointer.nextCheckpoint();
    commit(database, checkpointer, EVERY * 3 - 1);
    await done;
    // The commits made while the first ran counted towards nothing: the next asks after EVERY more.
    commit(database, checkpointer, EVERY - 1);
    expect(checkpointer.checkpoints).toBe(1);
  });

  it('when its thread cannot open the file, gives checkpoints back to the connection and says why', async () => {
    const { database } = walDatabase();
    const reasons: string[] = [];
    checkpointer = new BackgroundCheckpointer(database, path.join(dir, 'not-there.db'), {
      everyCommits: EVERY,
      busyTimeoutMs: 5000,
      onFailure: (reason) => reasons.push(reason),
    });
    const done = checkpointer.nextCheckpoint();
    commit(database, checkpointer, EVERY);
    expect(await done).toBeUndefined();
    expect(checkpointer.failed).toBe(true);
    expect(database.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    expect(reasons.join()).toMatch(/not-there\.db|unable to open|does not exist/i);
    // Further commits ask the failed thread for nothing.
    commit(database, checkpointer, EVERY * 2);
    expect(checkpointer.checkpoints).toBe(0);
  });

  it('closes its thread, after which commits ask for nothing', async () => {
    const { file, database } = walDatabase();
    checkpointer = new BackgroundCheckpointer(database, file, { everyCommits: EVERY, busyTimeoutMs: 5000 });
    const done = checkpointer.nextCheckpoint();
    commit(database, checkpointer, EVERY);
    await done;
    await checkpointer.close();
    commit(database, checkpointer, EVERY * 2);
    expect(checkpointer.checkpoints).toBe(1);
    database.close();
    db = undefined;
    // The ledger's connection was the last: its close copied the rest and removed the WAL.
    expect(existsSync(`${file}-wal`)).toBe(false);
  });
});

describe('a SQLite ledger', () => {
  let ledger: Ledger | undefined;
  afterEach(async () => {
    await ledger?.close();
    ledger = undefined;
  });

  it('leaves its checkpoints to the thread, keeps every write across them, and removes its WAL on close', async () => {
    const file = path.join(dir, 'ledger.db');
    ledger = await openLedger(`sqlite:${file}`);
    expect(await ledgerSql(ledger).raw('pragma wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 0 }]);
    const batches = CHECKPOINT_EVERY_COMMITS * 2 + 10;
    for (let i = 0; i < batches; i++) {
      await ledger.ensureBatch({ batchId: `b${i}`, workflowId: `w${i}`, total: 1, state: 'RUNNING' });
    }
    await ledger.close();
    ledger = undefined;
    expect(existsSync(`${file}-wal`)).toBe(false);
    const reader = new Database(file, { readonly: true });
    try {
      expect(reader.prepare('select count(*) as n from sync_batches').get()).toEqual({ n: batches });
    } finally {
      reader.close();
    }
  });
});

describe('a process with a SQLite ledger', () => {
  it('goes on after closing its ledger: the close waits for the checkpoint thread and keeps the process up', async () => {
    const script = path.join(dir, 'close.ts');
    writeFileSync(
      script,
      [
        `import { openLedger } from ${JSON.stringify(path.join(PROJECT_ROOT, 'src', 'ledger'))};`,
        `(async () => {`,
        `  const ledger = await openLedger(${JSON.stringify(`sqlite:${path.join(dir, 'ledger.db')}`)});`,
        `  for (let i = 0; i < ${CHECKPOINT_EVERY_COMMITS + 10}; i++)`,
        `    await ledger.ensureBatch({ batchId: 'b' + i, workflowId: 'w' + i, total: 1, state: 'RUNNING' });`,
        `  await ledger.close();`,
        `  await new Promise((resolve) => setTimeout(resolve, 10));`,
        `  console.log('still here after close');`,
        `})();`,
      ].join('\n'),
    );
    const { stdout } = await promisify(execFile)(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [script], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(stdout).toContain('still here after close');
  }, 90_000);
});
