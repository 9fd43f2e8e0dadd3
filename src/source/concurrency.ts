/** Bounded parallelism for file system work. */

/**
 * Calls `task` for every element with at most `limit` calls in flight, and resolves with the
 * results in input order. Rejects with the first error once the calls in flight have settled.
 */
export async function mapWithConcurrency<T, R>(
  elements: readonly T[],
  limit: number,
  task: (element: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const results = new Array<R>(elements.length);
  let next = 0;
  let failed = false;
  const runner = async (): Promise<void> => {
    while (!failed && next < elements.length) {
      const index = next++;
      try {
        results[index] = await task(elements[index]!, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const runners = Array.from({ length: Math.min(limit, elements.length) }, runner);
  const settled = await Promise.allSettled(runners);
  const rejection = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (rejection) throw rejection.reason;
  return results;
}

/**
 * Calls `task` for each element of `elements` (an iterable or a stream) with at most `limit`
 * calls in flight, and yields their results in input order as they become ready. Rejects with a
 * task's error when its turn comes (the calls still in flight are left to settle unobserved).
 */
export async function* orderedMap<T, R>(
  elements: Iterable<T> | AsyncIterable<T>,
  limit: number,
  task: (element: T) => Promise<R>,
): AsyncGenerator<R> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const inFlight: Promise<R>[] = [];
  for await (const element of elements) {
    const call = task(element);
    // Observed now, awaited in its turn: a rejection while an earlier call is awaited is not "unhandled".
    call.catch(() => undefined);
    inFlight.push(call);
    if (inFlight.length >= limit) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
}
