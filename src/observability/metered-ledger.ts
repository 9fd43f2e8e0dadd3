/**
 * Counts outcomes from the ledger writes the activities make, so the activities need no metrics
 * code: a decorator of the Ledger port. Every ledger write is idempotent, and Temporal may retry
 * an activity, so each (interaction, event) and each (interaction, end state) is counted once per
 * worker process (a bounded memory of what was counted).
 */
import type { InteractionPatch, Ledger, OpenInteraction, StepEvent } from '../ledger/port';
import type { FileState } from '../shared';
import type { SyncMetrics } from './metrics';

const END_STATES: ReadonlySet<FileState> = new Set(['RECORDED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'CANCELLED']);

/** A set that forgets its oldest entries past `max`. */
class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  /** Adds key; false when it was there already. */
  add(key: string): boolean {
    if (this.items.has(key)) return false;
    this.items.add(key);
    if (this.items.size > this.max) this.items.delete(this.items.values().next().value!);
    return true;
  }
}

function field(detail: unknown, key: string): unknown {
  return detail && typeof detail === 'object' ? (detail as Record<string, unknown>)[key] : undefined;
}

export function meteredLedger(inner: Ledger, metrics: SyncMetrics, memory = 100_000): Ledger {
  const targets = new Map<string, string>();
  const counted = new BoundedSet(memory);

  async function targetOf(interactionId: string): Promise<string> {
    const known = targets.get(interactionId);
    if (known) return known;
    // Opened by another worker process, or before a restart.
    const row = await inner.getInteraction(interactionId).catch(() => undefined);
    const target = row?.target ?? 'unknown';
    remember(interactionId, target);
    return target;
  }

  function remember(interactionId: string, target: string): void {
    targets.set(interactionId, target);
    if (targets.size > memory) targets.delete(targets.keys().next().value!);
  }

  async function countEvent(interactionId: string, e: StepEvent): Promise<void> {
    if (!counted.add(`${interactionId}\u0000${e.eventKey}`)) return;
    const target = await targetOf(interactionId);
    switch (e.kind) {
      case 'SENT': {
        const size = Number(field(e.detail, 'size'));
        if (Number.isFinite(size) && size > 0) metrics.bytesSent.inc({ target }, size);
        break;
      }
      case 'VERIFY_FAILED':
        metrics.verificationFailures.inc({ target, rule: String(field(e.detail, 'rule') ?? 'unknown') });
        break;
      case 'RESEND_QUEUED':
        metrics.resends.inc({ target });
        break;
      case 'ROLLED_BACK':
        metrics.rollbacks.inc({ target, status: 'DONE' });
        break;
      case 'ROLLBACK_FAILED':
        metrics.rollbacks.inc({ target, status: 'FAILED' });
        break;
    }
  }

  async function countStatus(interactionId: string, patch: InteractionPatch): Promise<void> {
    const status = patch.status;
    if (!status || !END_STATES.has(status)) return;
    if (!counted.add(`${interactionId}\u0000state:${status}`)) return;
    metrics.filesFinished.inc({ outcome: status, target: await targetOf(interactionId) });
  }

  const overrides: Partial<Ledger> = {
    async openInteraction(i: OpenInteraction) {
      const opened = await inner.openInteraction(i);
      remember(i.interactionId, i.target);
      return opened;
    },

    // The usual way a file's interaction opens: its target is known here, not looked up later.
    async openClaimed(i, claim, opened) {
      const result = await inner.openClaimed(i, claim, opened);
      remember(i.interactionId, i.target);
      return result;
    },

    async appendEvent(e) {
      await inner.appendEvent(e);
      await countEvent(e.interactionId, e);
    },

    async updateInteraction(interactionId, patch) {
      await inner.updateInteraction(interactionId, patch);
      await countStatus(interactionId, patch);
    },

    async recordStep(interactionId, events, patch) {
      await inner.recordStep(interactionId, events, patch);
      for (const e of events) await countEvent(interactionId, e);
      if (patch) await countStatus(interactionId, patch);
    },
  };

  // A Proxy rather than a class, so methods added to the port later pass through untouched.
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop as keyof Ledger];
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
