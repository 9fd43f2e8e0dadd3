/**
 * The intake on both ledger backends: submissions racing for one key and a repeated submission
 * under faults, delivered once each, with the invariant for every file, on SQLite and PostgreSQL.
 */
import { afterAll, describe, expect } from 'vitest';
import { BACKENDS } from '../ledger/backends';
import { it } from '../helpers/fixture';
import { expectOneTruth } from '../helpers/one-truth';
import { waitFor } from '../helpers/wait';
import { MAX_RESENDS, intakeOn, submission } from './intake-backend-helpers';

describe.each(BACKENDS.filter((b) => !b.skipped))('the intake on the $name ledger', (backend) => {
  afterAll(async () => {
    await backend.cleanup();
  });

  it('racing and repeated submissions deliver each file once', { timeout: 300_000 }, async ({ harness }) => {
    await backend.check();
    const h = await harness({
      ledgerUrl: await backend.freshUrl(),
      simulator: { failRate: 0.1, dropRate: 0.1, seed: 5 },
    });
    expect(h.ledger.dialect).toBe(backend.name);
    const { backend: intake, batchId } = intakeOn(h);
    const made = await h.makeFiles(20, 2048, 20);
    const items = made.map((i) => ({ ...i, orderId: 'ord-l' }));
    const subs = [submission('ord-l', items.slice(0, 10)), submission('ord-l', items.slice(10))];
    // Each submission sent three times at once, as an impatient client would.
    const outcomes = await Promise.all(subs.flatMap((s) => [intake.submit(s), intake.submit(s), intake.submit(s)]));
    expect(outcomes.filter((o) => o.kind === 'accepted' && !o.replayed)).toHaveLength(2);
    for (const o of outcomes) expect(['accepted', 'in_progress']).toContain(o.kind);
    for (const s of subs) expect(await intake.submit(s)).toMatchObject({ kind: 'accepted', replayed: true });

    await waitFor(
      'every file ended',
      async () =>
        (await intake.orderStatus('ord-l'))?.files.every((f) => ['RECORDED', 'ROLLED_BACK'].includes(f.state)),
      240_000,
    );
    expect((await intake.orderStatus('ord-l'))?.files).toHaveLength(20);
    expect(await h.ledger.listInteractions(batchId)).toHaveLength(20);
    await expectOneTruth(h, [batchId], items, { maxResends: MAX_RESENDS });
  });
});
