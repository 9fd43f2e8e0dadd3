/**
 * Where one batch stops scaling: the batch workflow's own history, read back after a run.
 *
 * A batch is one workflow history per run: every child's start and completion is an event of it,
 * and every signal or completion that reaches it wakes a workflow task that the server hands to a
 * worker and applies in order. This reads every run of a batch workflow and reports, from the
 * event timestamps the server wrote:
 * - its events and workflow tasks per second over the busy part of the run;
 * - each workflow task's latency: scheduled -> started (the server's queueing and matching) and
 *   started -> completed (the worker's processing), p50 and p99;
 * - how many child completions each workflow task took in (the batching that keeps one history
 *   ahead of its children).
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { percentile } from './stats';

const EventType = temporal.api.enums.v1.EventType;

export interface BatchHistoryStats {
  runs: number;
  events: number;
  workflowTasks: number;
  childCompletions: number;
  /** From the first event of the first run to the last event of the last run. */
  spanSeconds: number;
  eventsPerSecond: number;
  workflowTasksPerSecond: number;
  childCompletionsPerSecond: number;
  /** Child completions (closed children) a workflow task took in, on average. */
  completionsPerWorkflowTask: number;
  scheduleToStartMs: { p50: number; p99: number; max: number };
  startToCompleteMs: { p50: number; p99: number; max: number };
}

function ms(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  if (!ts) return undefined;
  return Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

function percentiles(xs: number[]): { p50: number; p99: number; max: number } {
  if (xs.length === 0) return { p50: 0, p99: 0, max: 0 };
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.reduce((a, b) => Math.max(a, b)) };
}

const CHILD_CLOSED = new Set<number>([
  EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
  EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
  EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
  EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
  EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
]);

/** Reads every run of the batch workflow `workflowId` and measures its history. */
export async function batchHistoryStats(client: Client, workflowId: string): Promise<BatchHistoryStats> {
  const scheduleToStart: number[] = [];
  const startToComplete: number[] = [];
  let runs = 0;
  let events = 0;
  let workflowTasks = 0;
  let childCompletions = 0;
  let first = Infinity;
  let last = -Infinity;
  for await (const run of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    runs += 1;
    const history = await client.workflow.getHandle(workflowId, run.runId).fetchHistory();
    const scheduledAt = new Map<number, number>();
    const startedAt = new Map<number, number>();
    for (const e of history.events ?? []) {
      events += 1;
      const at = ms(e.eventTime);
      const id = Number(e.eventId);
      if (at !== undefined) {
        first = Math.min(first, at);
        last = Math.max(last, at);
      }
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED && at !== undefined) scheduledAt.set(id, at);
      else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED && at !== undefined) {
        const scheduledId = Number(e.workflowTaskStartedEventAttributes?.scheduledEventId);
        const scheduled = scheduledAt.get(scheduledId);
        if (scheduled !== undefined) scheduleToStart.push(at - scheduled);
        startedAt.set(id, at);
      } else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && at !== undefined) {
        workflowTasks += 1;
        const started = startedAt.get(Number(e.workflowTaskCompletedEventAttributes?.startedEventId));
        if (started !== undefined) startToComplete.push(at - started);
      } else if (e.eventType != null && CHILD_CLOSED.has(e.eventType)) childCompletions += 1;
    }
  }
  const spanSeconds = Number.isFinite(first) ? Math.max(0.001, (last - first) / 1000) : 0;
  const per = (n: number) => (spanSeconds ? Number((n / spanSeconds).toFixed(1)) : 0);
  return {
    runs,
    events,
    workflowTasks,
    childCompletions,
    spanSeconds: Number(spanSeconds.toFixed(1)),
    eventsPerSecond: per(events),
    workflowTasksPerSecond: per(workflowTasks),
    childCompletionsPerSecond: per(childCompletions),
    completionsPerWorkflowTask: workflowTasks ? Number((childCompletions / workflowTasks).toFixed(2)) : 0,
    scheduleToStartMs: percentiles(scheduleToStart),
    startToCompleteMs: percentiles(startToComplete),
  };
}
