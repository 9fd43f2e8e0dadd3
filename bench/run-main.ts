/** What a stopped bench still has to close: its servers, worker processes and databases. */
const open = new Set<() => Promise<unknown>>();
let stopping = false;
let listening = false;

/**
 * Runs a bench's main and exits when it is done: 0, or 1 with its error (a bench leaves no handle
 * open to keep it up). A bench stopped by a signal exits when it has closed what it started
 * (see closeOnSignal), not when its main fails for the connections closed under it.
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => {
      if (!stopping) process.exit(0);
    },
    (err: unknown) => {
      if (stopping) return;
      console.error(err);
      process.exit(1);
    },
  );
}

function stopOnSignal(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  console.error(`bench: ${signal}: closing what it started...`);
  // Work under way fails as its connections close (a client's retry timer throws, say): expected now.
  const expected = (err: unknown) => console.error(`bench: while closing: ${String(err)}`);
  process.on('uncaughtException', expected);
  process.on('unhandledRejection', expected);
  const closers = [...open].reverse();
  open.clear();
  void (async () => {
    for (const close of closers) {
      await close().catch((err: unknown) => console.error('bench: could not close:', err));
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  })();
}

/**
 * Has `close` run when the bench is stopped by SIGINT or SIGTERM, which skip its `finally`
 * blocks: a Temporal server, worker processes or a PostgreSQL database left behind would load the
 * machine and skew the next run. Returns the function that forgets it, for a normal close.
 */
export function closeOnSignal(close: () => Promise<unknown>): () => void {
  if (!listening) {
    // Beside any other listener (the Temporal runtime's, which shuts an in-process worker down).
    listening = true;
    process.on('SIGINT', stopOnSignal);
    process.on('SIGTERM', stopOnSignal);
  }
  open.add(close);
  return () => {
    open.delete(close);
  };
}

/**
 * Awaits a start (a server, a stack) and keeps it closed by a signal from then on, including a
 * signal that comes while it starts: it is closed once up (a failed start closes its own parts).
 * `closer` names the close of what started, read once when the start ends. Returns what started
 * and its close, which no longer waits for a signal.
 */
export async function startClosedOnSignal<T, R>(
  starting: Promise<T>,
  closer: (started: T) => () => Promise<R>,
): Promise<{ started: T; close: () => Promise<R> }> {
  const closeOf = starting.then(closer);
  const forget = closeOnSignal(() =>
    closeOf.then(
      (close) => close(),
      () => undefined,
    ),
  );
  const started = await starting.catch((err: unknown) => {
    forget();
    throw err;
  });
  const close = await closeOf;
  return {
    started,
    close: () => {
      forget();
      return close();
    },
  };
}
