import type { Command } from 'commander';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { checkBatchConsistency, type Drift } from '../../consistency/invariant';
import { repairBatch } from '../../consistency/repair';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { action, CliError, printJson } from '../common';

function driftLine(d: Drift): string {
  return `  ${d.kind.padEnd(16)} ${d.orderId}/${d.fileName} (${d.status}, target ${d.target}): ${d.detail}`;
}

export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .description('compare the ledger with what the recording system holds and list every drift')
    .argument('<batch>', 'batch id')
    .option('--repair', 'resend or remove until the ledger and the recording system agree')
    .option('--json', 'print one JSON document')
    .action(
      action(async (batchId: string, flags: { repair?: boolean; json?: boolean }) => {
        const ledger = await openLedger(ledgerUrlFromEnv());
        try {
          if (!(await ledger.getBatch(batchId))) throw new CliError(`the ledger has no batch ${batchId}`, 3);
          const targets = createTargets(loadTargetsConfig());
          if (!flags.repair) {
            const report = await checkBatchConsistency({ ledger, targets, batchId });
            if (flags.json) printJson(report);
            else {
              process.stdout.write(`Batch ${batchId}: ${report.files} files checked, ${report.drifts.length} drifts\n`);
              for (const d of report.drifts) process.stdout.write(`${driftLine(d)}\n`);
              if (report.needsAttention.length)
                process.stdout.write(`  ${report.needsAttention.length} files need attention (rollback failed)\n`);
            }
            if (report.drifts.length > 0) process.exitCode = 4;
            return;
          }
          const result = await repairBatch({ ledger, targets, batchId });
          if (flags.json) printJson(result);
          else {
            process.stdout.write(`Batch ${batchId}: ${result.before.drifts.length} drifts found\n`);
            for (const r of result.repairs)
              process.stdout.write(
                `${driftLine(r.drift)}\n    -> ${r.action}: ${r.ok ? 'ok' : 'FAILED'} (${r.detail})\n`,
              );
            process.stdout.write(`After repair: ${result.after.drifts.length} drifts\n`);
            for (const d of result.after.drifts) process.stdout.write(`${driftLine(d)}\n`);
          }
          if (result.after.drifts.length > 0) process.exitCode = 4;
        } finally {
          await ledger.close();
        }
      }),
    );
}
