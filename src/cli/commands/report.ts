import type { Command } from 'commander';
import {
  buildReport,
  exportByStatus,
  fileReportRows,
  formatReport,
  readReceipts,
  writeFileReport,
  type Receipts,
} from '../../batch/report';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { errorText } from '../../errors';
import { action, CliError, type ErrorCode, ledgerName, noLedgerText, printJson, withLedgerToRead } from '../common';

interface ReportFlags {
  json?: boolean;
  export?: string;
  failedOnly?: boolean;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description("a batch's outcome from the ledger: files per status, failures, rollbacks")
    .argument('<batch>', 'batch id')
    .option('--json', 'print one JSON document')
    .option(
      '--export <dir>',
      'also write the per-file report (report.csv, spreadsheet-safe, and report.jsonl) and one CSV per status into this folder',
    )
    .option('--failed-only', 'export only the files that did not end RECORDED')
    .action(
      action(async (batchId: string, flags: ReportFlags) => {
        if (flags.failedOnly && !flags.export) throw new CliError('--failed-only needs --export DIR', 2);
        const noBatch = (why: string, code: ErrorCode = 'unknown_batch') =>
          new CliError(`the ledger has no batch ${batchId}: ${why}`, 3, { code });
        await withLedgerToRead(
          async (ledger) => {
            const report = await buildReport(ledger, batchId);
            if (!report) throw noBatch(`it is not in ${ledgerName()}`);
            const exported: string[] = [];
            let receipts: Receipts | undefined;
            if (flags.export) {
              // The receipt's sha256 is what the recording system holds now, read at export time.
              try {
                receipts = { read: true, sha256: await readReceipts(report, createTargets(loadTargetsConfig())) };
              } catch (err) {
                receipts = { read: false, reason: errorText(err) };
                process.stderr.write(`image-sync: receipts not read, sha256Receipt left empty: ${receipts.reason}\n`);
              }
              const trails = await ledger.interactionTrails(batchId);
              const rows = fileReportRows(report, trails, receipts, { failedOnly: flags.failedOnly });
              exported.push(...(await writeFileReport(rows, flags.export)));
              exported.push(...(await exportByStatus(report, flags.export, { failedOnly: flags.failedOnly })));
            }
            if (flags.json) {
              const receiptsRead =
                receipts && (receipts.read ? { read: true } : { read: false, reason: receipts.reason });
              printJson({ ...report, exported, ...(receiptsRead ? { receipts: receiptsRead } : {}) });
            } else {
              process.stdout.write(formatReport(report));
              for (const f of exported) process.stdout.write(`  wrote ${f}\n`);
            }
          },
          () => noBatch(noLedgerText(), 'no_ledger'),
        );
      }),
    );
}
