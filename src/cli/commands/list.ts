import { InvalidArgumentError, type Command } from 'commander';
import type { BatchRow } from '../../ledger';
import { BATCH_STATES, type BatchState } from '../../shared';
import { action, ledgerName, parseIntOption, printJson, withLedgerToRead } from '../common';

export interface ListedBatch {
  batchId: string;
  workflowId: string;
  state: BatchState;
  total: number;
  recorded: number;
  rolledBack: number;
  failed: number;
  createdAt: string;
  finishedAt: string | null;
}

function toListed(b: BatchRow): ListedBatch {
  return {
    batchId: b.batch_id,
    workflowId: b.workflow_id,
    state: b.state,
    total: b.total,
    recorded: b.recorded,
    rolledBack: b.rolled_back,
    failed: b.failed,
    createdAt: b.created_at,
    finishedAt: b.finished_at,
  };
}

function parseState(raw: string): BatchState {
  const state = raw.toUpperCase();
  if (!(BATCH_STATES as readonly string[]).includes(state))
    throw new InvalidArgumentError(`--state must be one of ${BATCH_STATES.join(', ')}`);
  return state as BatchState;
}

/** The batches as a table: one line each, newest first; `ledger` names where they were read. */
export function formatBatches(batches: ListedBatch[], ledger: string): string {
  if (batches.length === 0) return `No batches in the ledger at ${ledger}.\n`;
  const width = Math.max(8, ...batches.map((b) => b.batchId.length));
  const lines = [
    `${'BATCH'.padEnd(width)}  ${'STATE'.padEnd(23)}  ${'FILES'.padStart(6)}  ${'RECORDED'.padStart(8)}  ${'ROLLED BACK'.padStart(11)}  ${'FAILED'.padStart(6)}  ${'STARTED'.padEnd(24)}  ENDED`,
  ];
  for (const b of batches) {
    lines.push(
      `${b.batchId.padEnd(width)}  ${b.state.padEnd(23)}  ${String(b.total).padStart(6)}  ${String(b.recorded).padStart(8)}  ${String(b.rolledBack).padStart(11)}  ${String(b.failed).padStart(6)}  ${b.createdAt.padEnd(24)}  ${b.finishedAt ?? '-'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function registerList(program: Command): void {
  program
    .command('list')
    .description(
      'the batches the ledger knows, newest first, with state, counts and start and end times (reads the ledger only)',
    )
    .option('--state <state>', `only batches in this state (${BATCH_STATES.join(', ')})`, parseState)
    .option('--limit <n>', 'at most this many batches (default 100)', parseIntOption('--limit', 1, 100_000))
    .option('--json', 'print one JSON document')
    .action(
      action(async (flags: { state?: BatchState; limit?: number; json?: boolean }) => {
        await withLedgerToRead(async (ledger) => {
          const batches = (await ledger.listBatches({ state: flags.state, limit: flags.limit ?? 100 })).map(toListed);
          if (flags.json) printJson({ ledger: ledgerName(), batches });
          else {
            process.stderr.write(`ledger: ${ledgerName()}\n`);
            process.stdout.write(formatBatches(batches, ledgerName()));
          }
        });
      }),
    );
}
