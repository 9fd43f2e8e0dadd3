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
