/**
 * Notification activities: POST one batch event to one receiver, signed with an HMAC of the
 * body when a secret is set, and keep the outcome in the ledger. A receiver that is down costs
 * the batch at most the notification's own timeout: the workflow bounds the activity by it.
 */
import { createHmac } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FailureType } from '../failures';
import type { NotifyBody } from '../shared';
import { errorText } from '../errors';
import type { NotificationOutcome } from '../ledger/port';
import type { ActivityDeps } from './context';

export const SIGNATURE_HEADER = 'X-Image-Sync-Signature';
export const EVENT_HEADER = 'X-Image-Sync-Event';
export const DELIVERY_HEADER = 'X-Image-Sync-Delivery';

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body bytes, keyed by the secret. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A receiver's URL as logs and the ledger show it: no credentials, no query string. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** The ledger's record of one event's delivery to one receiver. */
function outcome(
  url: string,
  body: NotifyBody,
  result: Pick<NotificationOutcome, 'outcome' | 'attempts' | 'error'>,
): NotificationOutcome {
  return { eventId: body.id, batchId: body.batchId, event: body.event, url: shownUrl(url), ...result };
}

/** Statuses worth another attempt: the receiver may take the event later. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export function createNotifyActivities(deps: ActivityDeps) {
  const { ledger } = deps;

  return {
    /** POSTs one event to one receiver; one attempt per call, retried by the workflow's policy. */
    async notify(args: { url: string; body: NotifyBody; attemptTimeoutMs: number }): Promise<void> {
      const ctx = Context.current();
      const { body } = args;
      const text = JSON.stringify(body);
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'User-Agent': 'image-sync',
        [EVENT_HEADER]: body.event,
        [DELIVERY_HEADER]: body.id,
      };
      if (deps.notifySecret) headers[SIGNATURE_HEADER] = signBody(deps.notifySecret, text);
      const shown = shownUrl(args.url);
      const record = (result: 'DELIVERED' | 'FAILED', error?: string) =>
        ledger
          .recordNotification(
            outcome(args.url, body, { outcome: result, attempts: ctx.info.attempt, ...(error ? { error } : {}) }),
          )
          .catch((err: unknown) => ctx.log.warn('notification outcome not recorded', { error: errorText(err) }));
      let failure: ApplicationFailure | undefined;
      try {
        const res = await fetch(args.url, {
          method: 'POST',
          headers,
          body: text,
          redirect: 'manual',
          signal: AbortSignal.any([ctx.cancellationSignal, AbortSignal.timeout(args.attemptTimeoutMs)]),
        });
        await res.body?.cancel();
        if (res.status < 200 || res.status > 299) {
          const message = `${shown} answered ${res.status}`;
          failure = retryableStatus(res.status)
            ? ApplicationFailure.retryable(message, FailureType.NotifyFailed)
            : ApplicationFailure.nonRetryable(message, FailureType.NotifyFailed);
        }
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        failure = ApplicationFailure.retryable(`${shown} did not answer: ${errorText(err)}`, FailureType.NotifyFailed);
      }
      await record(failure ? 'FAILED' : 'DELIVERED', failure?.message);
      if (failure) throw failure;
    },

    /** Notes an event that could not be delivered, when no attempt of it has been recorded. */
    async recordNotificationFailure(args: { url: string; body: NotifyBody; error: string }): Promise<void> {
      await ledger.recordNotification(
        outcome(args.url, args.body, { outcome: 'FAILED', attempts: 0, error: args.error }),
        true,
      );
    },
  };
}
