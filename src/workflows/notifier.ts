/**
 * Notifications from a workflow: each event POSTed to each receiver by an activity, retried
 * with backoff and bounded by the notification's own timeout. A receiver that is down never
 * fails the workflow: the failure is told to `onFailure` (for the details) and kept in the
 * ledger. Deliveries run beside the workflow; `settle` waits for them before it continues as new
 * or ends, so no event is dropped and none holds the workflow longer than its timeout.
 */
import { CancellationScope, log, proxyActivities, proxyLocalActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { failureMessage } from '../failures';
import type { NotifyBody, NotifyEventName, NotifyOptions } from '../shared';
import { LEDGER_ACTIVITY_OPTIONS } from './options';

/** The longest one POST may wait for its answer. */
const MAX_ATTEMPT_MS = 10_000;

export interface Notifier {
  /** Sends one event to every receiver, in the background. */
  emit(event: NotifyEventName, body: Omit<NotifyBody, 'id' | 'event' | 'at'>): void;
  /** Waits for every delivery under way to end (delivered, or given up at its timeout). */
  settle(): Promise<void>;
}

export function createNotifier(options: NotifyOptions | undefined, onFailure: (text: string) => void): Notifier {
  const urls = options?.urls ?? [];
  const pending = new Set<Promise<void>>();
  if (urls.length === 0) return { emit: () => undefined, settle: async () => undefined };

  const timeoutMs = options!.timeoutMs;
  const attemptTimeoutMs = Math.min(MAX_ATTEMPT_MS, Math.max(500, Math.floor(timeoutMs / 2)));
  const { notify } = proxyActivities<Activities>({
    scheduleToCloseTimeout: timeoutMs,
    startToCloseTimeout: attemptTimeoutMs + 1_000,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
  });
  const { recordNotificationFailure } = proxyLocalActivities<Activities>(LEDGER_ACTIVITY_OPTIONS);

  function deliver(url: string, body: NotifyBody): void {
    // Never cancelled with the workflow: a cancelled batch still says it finished.
    const delivery: Promise<void> = CancellationScope.nonCancellable(async () => {
      try {
        await notify({ url, body, attemptTimeoutMs });
      } catch (err) {
        const error = failureMessage(err);
        onFailure(`${body.event} not delivered: ${error}`);
        log.warn('notification not delivered', { event: body.event, error });
        await recordNotificationFailure({ url, body, error }).catch(() => undefined);
      }
    }).finally(() => pending.delete(delivery));
    pending.add(delivery);
  }

  return {
    emit(event, fields) {
      const body: NotifyBody = { id: uuid4(), event, ...fields, at: new Date().toISOString() };
      for (const url of urls) deliver(url, body);
    },
    async settle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
