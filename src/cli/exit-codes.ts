/**
 * The exit codes of the command line and what each means: the help, the reference
 * (docs/reference/exit-codes.md) and scripts read them from here.
 */
export const EXIT_CODES: readonly { code: number; meaning: string }[] = [
  { code: 0, meaning: 'success' },
  { code: 1, meaning: 'failure (a service did not answer, an unexpected error); the one-line reason is on stderr' },
  {
    code: 2,
    meaning:
      'bad input: an unknown option, a bad option or environment value, an invalid manifest line (named with its field), or an operator action the batch refused',
  },
  {
    code: 3,
    meaning:
      'unknown batch or schedule (the message names the namespace and server, or the ledger, asked), no ledger where IMAGE_SYNC_LEDGER_URL points, a batch id already used, or a batch that has ended',
  },
  { code: 4, meaning: 'a batch ended other than COMPLETED (start --wait, status --watch), or reconcile found drift' },
  {
    code: 5,
    meaning:
      'an operator action (cancel, pause, resume, retry, set-concurrency, set-limits) was not confirmed: no worker answered within --timeout (the message names the task queue and what to do: a worker, or --signal)',
  },
  { code: 130, meaning: 'worker stopped at once by a second SIGINT' },
  { code: 143, meaning: 'worker stopped at once by a second SIGTERM' },
];

/** An operator action no worker confirmed within its --timeout. */
export const EXIT_NOT_CONFIRMED = 5;
