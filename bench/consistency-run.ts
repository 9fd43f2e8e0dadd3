/**
 * One measured batch with faults, checked against the consistency invariant:
 *   npm run bench:consistency -- --files 500 [--ledger URL] [--fail-rate 0.1 --drop-rate 0.05
 *     --corrupt-rate 0.05 --reject-rate 0.02] [--concurrency 20] [--max-resends 3]
 * Prints the wall time, the outcome counts and the drifts (none expected).
 */
import { parseArgs } from 'node:util';
import { startBatch } from '../src/batch/start';
import { checkBatchConsistency } from '../src/consistency/invariant';
import { scanDirectory } from '../src/source/scan';
import { generateBlobFiles } from '../src/devtools/samples/sample-images';
import path from 'node:path';
import { startBenchStack } from './stack';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '500' },
      size: { type: 'string', default: '20000' },
      ledger: { type: 'string' },
      'fail-rate': { type: 'string', default: '0.1' },
      'drop-rate': { type: 'string', default: '0.05' },
      'corrupt-rate': { type: 'string', default: '0.05' },
      'reject-rate': { type: 'string', default: '0.02' },
      concurrency: { type: 'string', default: '20' },
      'max-resends': { type: 'string', default: '3' },
      seed: { type: 'string', default: '7' },
    },
  });
  const files = Number(values.files);
  const maxResends = Number(values['max-resends']);
  const stack = await startBenchStack({
    ledgerUrl: values.ledger,
    simulator: {
      failRate: Number(values['fail-rate']),
      dropRate: Number(values['drop-rate']),
      corruptRate: Number(values['corrupt-rate']),
      rejectRate: Number(values['reject-rate']),
      seed: Number(values.seed),
    },
  });
  try {
    const dir = path.join(stack.workDir, 'src');
    await generateBlobFiles(dir, { count: files, size: Number(values.size) });
    const { items } = await scanDirectory(dir);
    const started = Date.now();
    const { batchId, handle } = await startBatch(stack.client, items, {
      taskQueue: stack.taskQueue,
      stateDir: stack.workDir,
      policy: { maxConcurrency: Number(values.concurrency), maxResends, resendBackoffMs: 200 },
    });
    const result = await handle.result();
    const seconds = (Date.now() - started) / 1000;
    const check = await checkBatchConsistency({ ledger: stack.ledger, targets: stack.targets, batchId, maxResends });
    const out = {
      ledger: stack.ledger.dialect,
      files,
      wallSeconds: Number(seconds.toFixed(1)),
      filesPerSecond: Number((files / seconds).toFixed(1)),
      state: result.state,
      recorded: result.recorded,
      rolledBack: result.rolledBack,
      rollbackFailed: result.rollbackFailed,
      resends: result.resends,
      faultsInjected: stack.simulator.stats().faults,
      drifts: check.drifts.length,
      needsAttention: check.needsAttention.length,
    };
    console.log(JSON.stringify(out, null, 2));
    if (check.drifts.length > 0) {
      console.error(check.drifts.slice(0, 20));
      process.exitCode = 1;
    }
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
