/**
 * One request's signal: aborted when the caller's signal aborts, or when the request has run for
 * its timeout. `end()` clears the timer and unlinks the caller's signal once the request is over.
 *
 * `AbortSignal.any([caller, AbortSignal.timeout(ms)])` does the same, but its timer stays armed
 * after the request ends, and fires later to build a TimeoutError nobody reads, and the combined
 * signal is tracked by the caller's signal until it is collected: two requests a file, thousands
 * of files a minute.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Whether the timeout (not the caller) aborted the request. */
  readonly timedOut: boolean;
  end(): void;
}

export function requestDeadline(timeoutMs: number, caller?: AbortSignal): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  // As AbortSignal.timeout's: a request in flight keeps the process alive by its socket, not its timer.
  timer.unref();
  const onCallerAbort = () => controller.abort(caller!.reason);
  if (caller?.aborted) onCallerAbort();
  else caller?.addEventListener('abort', onCallerAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    end() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    },
  };
}
