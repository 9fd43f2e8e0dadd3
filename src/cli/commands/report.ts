import type { Command } from 'commander';
import { buildReport, exportByStatus, formatReport } from '../../batch/report';
import { ledgerUrlFromEnv, openLedger } from '../../ledger';
import { action, CliError, printJson } from '../common';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description("a batch's outcome from the ledger: files per status, failures, rollbacks")
    .argument('<batch>', 'batch id')
    .option('--json', 'print one JSON document')
    .option('--export <dir>', 'also write one CSV per status into this folder')
    .action(
      action(async (batchId: string, flags: { json?: boolean; export?: string }) => {
        const ledger = await openLedger(ledgerUrlFromEnv());
        try {
          const report = await buildReport(ledger, batchId);
          if (!report) throw new CliError(`the ledger has no batch ${batchId}`, 3);
          const exported = flags.export ? await exportByStatus(report, flags.export) : [];
          if (flags.json) printJson({ ...report, exported });
          else {
            process.stdout.write(formatReport(report));
            for (const f of exported) process.stdout.write(`  wrote ${f}\n`);
          }
        } finally {
          await ledger.close();
        }
      }),
    );
}
