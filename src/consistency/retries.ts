import { RecordingSystemError } from '../recording-system/port';

/** Retries a read that failed for transport reasons (5xx, timeouts), a few times with backoff. */
export async function withRetries<T>(read: () => Promise<T>, attempts = 5, firstDelayMs = 200): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof RecordingSystemError && err.retryable) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, firstDelayMs * 2 ** (attempt - 1)));
    }
  }
}
