/**
 * With --json, a command that fails prints one JSON document on stdout,
 * `{ "error": { "code", "message", "exitCode", ... } }`, besides its one-line reason on stderr,
 * and exits with the same code as without --json: bad input, an unknown batch, no ledger, and
 * Temporal out of reach, across the commands that take --json.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openLedger } from '../../src/ledger';
import { cliEnv, runCli, stopAllClis, tempDir, type CliResult } from './helpers';

interface ErrorDoc {
  error: { code: string; message: string; exitCode: number; [more: string]: unknown };
}

/** The error document on stdout: exactly one JSON value, whose exit code is the process's. */
function errorDoc(r: CliResult): ErrorDoc['error'] {
  let doc: ErrorDoc;
  try {
    doc = JSON.parse(r.stdout) as ErrorDoc;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  expect(Object.keys(doc)).toEqual(['error']);
  expect(doc.error.exitCode).toBe(r.code);
  // The same reason stays on stderr, in one line.
  expect(r.stderr).toContain(`image-sync: ${doc.error.message}`);
  return doc.error;
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('--json errors are one JSON document', () => {
  let dir: string;
  let ledgerFile: string;
  let unreachable: string;
  const run = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, {
      env: cliEnv(dir, {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        IMAGE_SYNC_TASK_QUEUE: `json-errors-${randomUUID()}`,
        IMAGE_SYNC_LEDGER_URL: `sqlite:${ledgerFile}`,
        ...env,
      }),
      cwd: dir,
    });

  beforeAll(async () => {
    dir = await tempDir('json-errors');
    ledgerFile = path.join(dir, 'ledger.db');
    unreachable = `127.0.0.1:${await closedPort()}`;
  });
  afterAll(stopAllClis);

  it('no ledger: report, reconcile and list answer no_ledger with exit 3; without --json stdout stays empty', async () => {
    for (const args of [['report', 'nope'], ['reconcile', 'nope'], ['list']]) {
      const r = await run([...args, '--json']);
      expect(r.code, r.stderr).toBe(3);
      const e = errorDoc(r);
      expect(e.code).toBe('no_ledger');
      expect(e.message).toContain(`there is no ledger at SQLite file ${ledgerFile}`);
      const plain = await run(args);
      expect(plain.code).toBe(3);
      expect(plain.stdout).toBe('');
    }
  });

  it('a ledger without the batch: report and reconcile answer unknown_batch with exit 3', async () => {
    const ledger = await openLedger(`sqlite:${ledgerFile}`);
    await ledger.close();
    for (const command of ['report', 'reconcile']) {
      const e = errorDoc(
        await run([command, 'no-such-batch', '--json', ...(command === 'reconcile' ? ['--no-temporal'] : [])]),
      );
      expect(e).toMatchObject({ code: 'unknown_batch', exitCode: 3 });
      expect(e.message).toContain('the ledger has no batch no-such-batch');
    }
    const listed = await run(['list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ batches: [] });
  });

  it('an unknown batch on Temporal: status, pause, cancel and retry answer unknown_batch with exit 3, naming the namespace', async () => {
    for (const args of [['status'], ['pause'], ['cancel'], ['retry']]) {
      const e = errorDoc(await run([...args, 'no-such-batch', '--json']));
      expect(e).toMatchObject({ code: 'unknown_batch', exitCode: 3 });
      expect(e.message).toContain(`not found in namespace default at ${inject('temporalAddress')}`);
    }
  });

  it('Temporal out of reach: status, resume, set-concurrency and schedule list answer temporal_unreachable with exit 1', async () => {
    for (const args of [
      ['status', 'b'],
      ['resume', 'b'],
      ['set-concurrency', 'b', '2'],
      ['schedule', 'list'],
    ]) {
      const r = await run([...args, '--json'], { TEMPORAL_ADDRESS: unreachable });
      const e = errorDoc(r);
      expect(e).toMatchObject({ code: 'temporal_unreachable', exitCode: 1 });
      expect(e.message).toContain(`cannot reach Temporal at ${unreachable}`);
    }
  });

  it('bad input: usage errors, bad option values, a bad environment value and a bad manifest answer with exit 2', async () => {
    const usage = errorDoc(await run(['status', '--json']));
    expect(usage).toMatchObject({ code: 'usage', exitCode: 2, message: "missing required argument 'batch'" });
    const badValue = errorDoc(await run(['set-concurrency', 'b', '0', '--json']));
    expect(badValue).toMatchObject({ code: 'usage', exitCode: 2 });
    expect(badValue.message).toContain('n must be');
    const noLimit = errorDoc(await run(['set-limits', 'b', '--json']));
    expect(noLimit).toMatchObject({ code: 'bad_input', exitCode: 2 });
    const env = errorDoc(await run(['list', '--json'], { IMAGE_SYNC_NOTIFY_TIMEOUT_MS: 'soon' }));
    expect(env).toMatchObject({ code: 'bad_config', exitCode: 2 });
    expect(env.message).toContain('IMAGE_SYNC_NOTIFY_TIMEOUT_MS');
    const manifest = errorDoc(await run(['start', '--manifest', path.join(dir, 'missing.ndjson'), '--json']));
    expect(manifest).toMatchObject({ code: 'invalid_input', exitCode: 2 });
  });
});
