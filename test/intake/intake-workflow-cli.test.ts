/**
 * The batch commands work on an intake under its batch id: status, pause, resume, report and
 * reconcile, as docs/intake.md says.
 */
import { afterAll, describe, expect } from 'vitest';
import { cliEnv, runCli, stopAllClis, tempDir, type CliResult } from '../cli/helpers';
import { it } from '../helpers/fixture';
import { waitFor } from '../helpers/wait';
import { intakeOn, submission } from './intake-backend-helpers';

describe('batch commands on an intake', () => {
  afterAll(async () => {
    await stopAllClis();
  });

  it('status, pause, resume, report and reconcile take the intake’s batch id', async ({ harness }) => {
    const h = await harness();
    const home = await tempDir('intake-cli');
    const cli = async <T>(...args: string[]): Promise<T> => {
      const r: CliResult = await runCli(args, { env: cliEnv(home, h.env), timeoutMs: 120_000 });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    };
    const { backend, batchId } = intakeOn(h);
    const items = (await h.makeFiles(4, 2048, 4)).map((i) => ({ ...i, orderId: 'ord-cli' }));
    expect(await backend.submit(submission('ord-cli', items))).toMatchObject({ kind: 'accepted' });
    await waitFor('four files recorded', async () =>
      (await backend.orderStatus('ord-cli'))?.files.every((f) => f.state === 'RECORDED'),
    );

    const status = await cli<{ progress: { state: string; recorded: number } }>('status', batchId, '--json');
    expect(status.progress.state).toBe('RUNNING');
    expect(await cli('pause', batchId, '--json')).toMatchObject({ batchId, state: 'PAUSED' });
    expect(await cli('resume', batchId, '--json')).toMatchObject({ batchId, state: 'RUNNING' });
    const report = await cli<Record<string, unknown>>('report', batchId, '--json');
    expect(JSON.stringify(report)).toContain('ord-cli');
    const reconciled = await cli<{ drifts: unknown[] }>('reconcile', batchId, '--json');
    expect(reconciled.drifts).toEqual([]);
  }, 300_000);
});
