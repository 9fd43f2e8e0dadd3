/** What the intake's workflow-side tests share: a backend on a test's harness, and submissions. */
import { createHash, randomUUID } from 'node:crypto';
import type { IntakeFile, IntakeSubmission } from '../../src/intake/backend';
import { createIntakeBackend, type IntakeBackendDeps } from '../../src/intake/temporal-backend';
import type { SyncItem } from '../../src/shared';
import type { Harness } from '../helpers/harness';

export const MAX_RESENDS = 3;

/** A backend on the harness, with an intake of its own (tests share the dev server's namespace). */
export function intakeOn(h: Harness, more: Partial<IntakeBackendDeps> = {}) {
  const prefix = `intake-t${randomUUID().slice(0, 8)}-`;
  const backend = createIntakeBackend({
    client: h.client,
    ledger: h.ledger,
    taskQueue: h.taskQueue,
    policy: { resendBackoffMs: 50, maxResends: MAX_RESENDS },
    batchIdFor: (target) => `${prefix}${target}`,
    ...more,
  });
  return { backend, batchId: `${prefix}default` };
}

export function submission(orderId: string, items: SyncItem[], key: string = randomUUID()): IntakeSubmission {
  const files: IntakeFile[] = items.map((i) => ({ fileName: i.fileName, sourcePath: i.sourcePath }));
  const bodySha256 = createHash('sha256').update(JSON.stringify({ files })).digest('hex');
  return { orderId, idempotencyKey: key, bodySha256, files };
}
