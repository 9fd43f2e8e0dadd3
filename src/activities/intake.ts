/** Intake activities: what the intake workflow writes to the ledger beside its files' own interactions. */
import { mapped, type ActivityDeps } from './context';

export function createIntakeActivities(deps: ActivityDeps) {
  const { ledger } = deps;
  return {
    /**
     * A cancelled intake drops the files it had accepted and not started: the ledger notes it, so
     * the order's status says CANCELLED for them instead of waiting for a start that will not come.
     */
    async dropIntakeFiles(args: { files: { orderId: string; fileName: string; target: string }[] }): Promise<void> {
      await mapped(() => ledger.dropSubmittedFiles(args.files));
    },
  };
}
