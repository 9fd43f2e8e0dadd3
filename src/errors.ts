/**
 * The text of an error of unknown type, for logs, ledger events and messages to a person.
 * No imports: workflow code may use it (src/failures.ts does).
 */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
