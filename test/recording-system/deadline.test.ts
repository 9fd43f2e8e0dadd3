import { afterEach, describe, expect, it, vi } from 'vitest';
import { requestDeadline } from '../../src/recording-system/deadline';

describe('a request deadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts with a TimeoutError once the timeout has run, and says it timed out', () => {
    vi.useFakeTimers();
    const deadline = requestDeadline(1_000);
    vi.advanceTimersByTime(999);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.timedOut).toBe(true);
    expect((deadline.signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it("follows the caller's abort with the caller's reason, and does not call that a timeout", () => {
    const caller = new AbortController();
    const deadline = requestDeadline(60_000, caller.signal);
    const reason = new Error('cancelled by operator');
    caller.abort(reason);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe(reason);
    expect(deadline.timedOut).toBe(false);
    deadline.end();
  });

  it('is aborted from the start when the caller already aborted', () => {
    const caller = new AbortController();
    caller.abort(new Error('gone'));
    expect(requestDeadline(60_000, caller.signal).signal.aborted).toBe(true);
  });

  it("once ended, neither its timer nor the caller's abort reach it", () => {
    vi.useFakeTimers();
    const caller = new AbortController();
    const deadline = requestDeadline(1_000, caller.signal);
    deadline.end();
    expect(vi.getTimerCount()).toBe(0);
    caller.abort(new Error('late'));
    vi.advanceTimersByTime(5_000);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.timedOut).toBe(false);
  });
});
