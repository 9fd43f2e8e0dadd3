import type { Command } from 'commander';
import { createTargets, loadTargetsConfig } from '../../config/targets';
import { batchContextFromTemporal, type BatchContext } from '../../consistency/batch-context';
import type { Drift } from '../../consistency/drift';
import {
  checkBatchConsistency,
  type CheckOptions,
  type ConsistencyReport,
  type ReconcileProgress,
} from '../../consistency/invariant';
import { repairBatch } from '../../consistency/repair';
import type { RepairOutcome } from '../../consistency/repair-outcome';
import { errorText } from '../../errors';
import { connectClient } from '../../temporal/connection';
import {
  action,
  CliError,
  type ErrorCode,
  ledgerName,
  noLedgerText,
  parseIntOption,
  printJson,
  withExistingLedger,
} from '../common';

interface ReconcileFlags {
  repair?: boolean;
  removeForeign?: boolean;
  json?: boolean;
  maxResends?: number;
  manifest?: string;
  temporal: boolean;
  sources: boolean;
  pageSize: number;
  progress?: boolean;
}

function fileLine(
  kind: string,
  d: { orderId: string; fileName: string; target: string; detail: string },
  status?: string,
  prefix = '  ',
) {
  return `${prefix}${kind.padEnd(18)} ${d.orderId}/${d.fileName} (${status ? `${status}, ` : ''}target ${d.target}): ${d.detail}`;
}

function driftLine(d: Drift): string {
  return fileLine(d.kind, d, d.status);
}

function repairLine(r: RepairOutcome): string {
  return `${fileLine(r.kind, r)}\n    -> ${r.action}: ${r.ok ? 'ok' : 'FAILED'}${r.interactionId ? ` (interaction ${r.interactionId})` : ''}`;
}

function printReport(report: ConsistencyReport, heading: string): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(heading);
  for (const d of report.drifts) out(driftLine(d));
  for (const w of report.warnings) out(fileLine(w.kind, w, undefined, 'warning '));
  for (const a of report.needsAttention) out(fileLine(a.kind, a, 'ROLLBACK_FAILED', 'attention '));
  for (const u of report.unchecked) out(`  not checked: ${u}`);
}

function summary(batchId: string, r: ConsistencyReport): string {
  return (
    `Batch ${batchId}: ${r.files} files checked, ${r.heldUnderOrders} copies held under its orders, ` +
    `${r.drifts.length} drifts, ${r.warnings.length} warnings, ${r.needsAttention.length} need attention`
  );
}

/** A progress line on stderr at most twice a second; on a terminal it rewrites itself. */
function progressPrinter(enabled: boolean): { update: (p: ReconcileProgress) => void; end: () => void } {
  if (!enabled) return { update: () => undefined, end: () => undefined };
  const tty = process.stderr.isTTY;
  let last = 0;
  let pending: ReconcileProgress | undefined;
  const print = (p: ReconcileProgress) => {
    const line = `reconcile: ${p.phase} ${p.done}${p.total !== undefined ? `/${p.total}` : ''}`;
    process.stderr.write(tty ? `\r${line.padEnd(60)}` : `${line}\n`);
  };
  return {
    update(p) {
      pending = p;
      const now = Date.now();
      if (now - last >= 500) {
        last = now;
        print(p);
        pending = undefined;
      }
    },
    end() {
      if (pending) print(pending);
      if (tty) process.stderr.write('\n');
    },
  };
}

async function batchContext(batchId: string, flags: ReconcileFlags): Promise<BatchContext> {
  const context: BatchContext = { problems: [] };
  if (flags.temporal && (flags.maxResends === undefined || flags.manifest === undefined)) {
    try {
      const { client, connection } = await connectClient();
      try {
        Object.assign(context, await batchContextFromTemporal(client, batchId));
      } finally {
        await connection.close();
      }
    } catch (err) {
      context.problems.push(errorText(err).split('\n')[0]!);
    }
  }
  if (flags.maxResends !== undefined) context.maxResends = flags.maxResends;
  if (flags.manifest !== undefined) context.manifestPath = flags.manifest;
  return context;
}

export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .description('check every clause of the consistency invariant for a batch and list every drift')
    .argument('<batch>', 'batch id')
    .option('--repair', 'resend or remove until the ledger and the recording system agree')
    .option('--remove-foreign', 'with --repair: also remove copies another sender wrote where none should be')
    .option(
      '--max-resends <n>',
      "the batch's resend threshold (default: from the batch's start input)",
      parseIntOption('--max-resends', 0, 100),
    )
    .option('--manifest <file>', "the batch's normalised manifest (default: from the batch's start input)")
    .option('--no-temporal', 'do not ask Temporal for the batch threshold and manifest')
    .option('--no-sources', 'do not read the sources to find stale copies')
    .option(
      '--page-size <n>',
      'rows read per page from the ledger and the recording system',
      parseIntOption('--page-size', 1, 1000),
      1000,
    )
    .option('--progress', 'show progress on stderr (the default on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (batchId: string, flags: ReconcileFlags) => {
        if (flags.removeForeign && !flags.repair) throw new CliError('--remove-foreign only goes with --repair', 2);
        const noBatch = (why: string, code: ErrorCode = 'unknown_batch') =>
          new CliError(`the ledger has no batch ${batchId}: ${why}`, 3, { code });
        await withExistingLedger(
          async (ledger) => {
            if (!(await ledger.getBatch(batchId))) throw noBatch(`it is not in ${ledgerName()}`);
            const targets = createTargets(loadTargetsConfig());
            const context = await batchContext(batchId, flags);
            const progress = progressPrinter(flags.progress ?? (process.stderr.isTTY && !flags.json));
            const opts: CheckOptions = {
              ledger,
              targets,
              batchId,
              maxResends: context.maxResends,
              manifestPath: context.manifestPath,
              checkSources: flags.sources,
              pageSize: flags.pageSize,
              onProgress: progress.update,
            };
            const addProblems = (r: ConsistencyReport) => r.unchecked.push(...context.problems);
            if (!flags.repair) {
              const report = await checkBatchConsistency(opts);
              progress.end();
              addProblems(report);
              if (flags.json) printJson(report);
              else printReport(report, summary(batchId, report));
              if (report.drifts.length > 0) process.exitCode = 4;
              return;
            }
            const result = await repairBatch({ ...opts, removeForeign: flags.removeForeign });
            progress.end();
            addProblems(result.before);
            addProblems(result.after);
            if (flags.json) printJson(result);
            else {
              const out = (line: string) => process.stdout.write(`${line}\n`);
              out(
                `Batch ${batchId}: ${result.before.drifts.length} drifts found, ${result.before.needsAttention.length} need attention`,
              );
              for (const r of result.repairs) out(repairLine(r) + ` (${r.detail})`);
              printReport(
                result.after,
                `After repair: ${result.after.drifts.length} drifts (${summary(batchId, result.after)})`,
              );
            }
            // 0 only when every repair succeeded and nothing is left to repair.
            if (result.after.drifts.length > 0 || result.repairs.some((r) => !r.ok)) process.exitCode = 4;
          },
          () => noBatch(noLedgerText(), 'no_ledger'),
        );
      }),
    );
}
