/**
 * Activity interceptors of the worker: every activity log line carries the batch id and target
 * of the file it works on, and the send and verify activities are timed into the latency
 * histograms. Which activity does what is the table below: when activities are renamed or
 * merged, update the table, nothing else.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { SyncMetrics } from './metrics';

/**
 * Activity type → what its duration measures. `transfer` is a send and a verify in one
 * activity: its time goes to the send histogram, and its verdict (when it returns one) to
 * the verify result label.
 */
export const TIMED_ACTIVITIES: Record<string, 'send' | 'verify' | 'transfer'> = {
  // deliverFile (send and verify inside the workflow task) times its two phases itself, through
  // the worker's transfer observer (WorkerObservability.transferObserver).
  sendFile: 'send',
  verifyFile: 'verify',
};

interface FileArgs {
  batchId?: unknown;
  interactionId?: unknown;
  item?: { target?: unknown };
  target?: unknown;
}

/** The batch id, target and interaction id an activity's first argument names, if any. */
export function fileFieldsOf(args: readonly unknown[], resolveTarget: (t: string | undefined) => string) {
  const first = (args[0] ?? {}) as FileArgs;
  const fields: Record<string, string> = {};
  if (typeof first.batchId === 'string') fields.batchId = first.batchId;
  if (typeof first.interactionId === 'string') fields.interactionId = first.interactionId;
  const rawTarget = first.item?.target ?? first.target;
  if (first.item !== undefined || typeof first.target === 'string') {
    fields.target = resolveTarget(typeof rawTarget === 'string' ? rawTarget : undefined);
  }
  return fields;
}

/**
 * A verdict of the preset rules (`{ ok: false, rule }`, or a delivery's `{ verdict }`) says the
 * check ran and failed.
 */
function verdictResult(value: unknown): 'ok' | 'failed' {
  const verdict: unknown = value && typeof value === 'object' && 'verdict' in value ? value.verdict : value;
  return verdict && typeof verdict === 'object' && (verdict as { ok?: unknown }).ok === false ? 'failed' : 'ok';
}

/** A delivery that left a large file to the regular send activity sent nothing: not timed. */
function sentNothing(value: unknown): boolean {
  return !!value && typeof value === 'object' && (value as { kind?: unknown }).kind === 'large';
}

export function observabilityInterceptors(opts: {
  metrics?: SyncMetrics;
  resolveTarget: (target: string | undefined) => string;
  timed?: Record<string, 'send' | 'verify' | 'transfer'>;
}): ActivityInterceptorsFactory {
  const timed = opts.timed ?? TIMED_ACTIVITIES;
  return (ctx) => {
    let fields: Record<string, string> = {};
    return {
      inbound: {
        async execute(input, next) {
          fields = fileFieldsOf(input.args, opts.resolveTarget);
          const role = timed[ctx.info.activityType];
          if (!opts.metrics || !role) return next(input);
          const target = fields.target ?? 'unknown';
          const started = process.hrtime.bigint();
          const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
          const histogram = role === 'verify' ? opts.metrics.verifySeconds : opts.metrics.sendSeconds;
          try {
            const result = await next(input);
            if (role === 'transfer' && sentNothing(result)) return result;
            histogram.observe({ target, result: role === 'send' ? 'ok' : verdictResult(result) }, seconds());
            return result;
          } catch (err) {
            histogram.observe({ target, result: 'error' }, seconds());
            throw err;
          }
        },
      },
      outbound: {
        getLogAttributes(input, next) {
          return next({ ...input, ...fields });
        },
      },
    };
  };
}
