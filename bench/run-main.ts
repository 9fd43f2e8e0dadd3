/** Runs a bench's main and exits when it is done: 0, or 1 with its error (a bench leaves no handle open to keep it up). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
