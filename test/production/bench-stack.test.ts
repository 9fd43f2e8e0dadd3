/**
 * The benchmark's stack on the production topology: startBenchStack({ server: 'postgres',
 * workerProcesses: 2 }) runs the Temporal server on a database of its own and two worker
 * processes, names every process by role, and its CPU and database readings move when a batch
 * runs. It asserts no timing.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startBatch } from '../../src/batch/start';
import { scanDirectory } from '../../src/source/scan';
import { generateBlobFiles } from '../../src/devtools/samples/sample-images';
import { counterDelta, startDatabaseMeasure, startBenchStack, type BenchStack } from '../../bench/stack';
import { pgUrlFor } from './helpers';

describe('bench stack: Temporal server on PostgreSQL with worker processes', () => {
  let stack: BenchStack | undefined;
  afterAll(async () => {
    await stack?.close();
  });

  it('lists server, worker and database processes, and their CPU and the database counters grow with a batch', async () => {
    stack = await startBenchStack({ server: 'postgres', workerProcesses: 2 });
    expect(stack.server.kind).toBe('postgres');
    expect(stack.worker).toBeNull();
    const database = stack.server.database!;
    const pids = await stack.pids();
    expect(pids.workers).toHaveLength(2);
    expect(new Set([...pids.server, ...pids.workers, ...pids.bench]).size).toBe(4);
    expect(pids.database.length).toBeGreaterThan(0);
    for (const pid of [...pids.server, ...pids.workers, ...pids.database])
      expect(existsSync(`/proc/${pid}`)).toBe(true);

    const measure = await startDatabaseMeasure(stack, 1_000);
    expect(measure).not.toBeNull();
    const cpu0 = await stack.cpu();
    const counters0 = (await stack.databaseCounters())!;
    const dir = path.join(stack.workDir, 'src');
    await generateBlobFiles(dir, { count: 12, size: 512, filesPerOrder: 6 });
    const { items } = await scanDirectory(dir);
    const { handle } = await startBatch(stack.client, items, {
      taskQueue: stack.taskQueue,
      stateDir: stack.workDir,
      policy: { maxConcurrency: 6 },
    });
    expect((await handle.result()).recorded).toBe(12);
    const cpu1 = await stack.cpu();
    expect(cpu1.server).toBeGreaterThan(cpu0.server);
    expect(cpu1.workers).toBeGreaterThan(cpu0.workers);
    expect(cpu1.database).toBeGreaterThan(cpu0.database);
    // The raw counters grow with the batch. The measure's per-file figures subtract the rate
    // read while idle, which on a loaded machine (the server still settling) can exceed what
    // the batch adds, so they are only checked to be figures.
    const grown = counterDelta(counters0, (await stack.databaseCounters())!);
    expect(grown.rowsInserted).toBeGreaterThan(0);
    expect(grown.transactions).toBeGreaterThan(0);
    const db = await measure!.finish(items.length);
    expect(Number.isFinite(db.perFile.rowsInserted)).toBe(true);
    expect(Number.isFinite(db.perFile.transactions)).toBe(true);
    expect(Object.keys(db.tableWritesPerFile)).toContain('temporal.executions');

    await stack.close();
    stack = undefined;
    // The stack's database is gone with it.
    const pg = new PgClient({ connectionString: pgUrlFor('postgres') });
    await pg.connect();
    try {
      expect((await pg.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount).toBe(0);
    } finally {
      await pg.end();
    }
    for (const pid of [...pids.server, ...pids.workers]) expect(existsSync(`/proc/${pid}`)).toBe(false);
  }, 240_000);
});
