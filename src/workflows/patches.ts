/**
 * The ids of the workflow patches (`patched()`): each names a change to a workflow's commands
 * that a run begun before it must not see when it replays. A run that recorded the patch takes
 * the new path; a run begun by a worker without it replays, and goes on, the old way.
 */

/**
 * A batch (syncBatch) or an intake starts the next files while earlier starts still wait for the
 * server's confirmation, instead of a round at a time.
 */
export const PIPELINED_STARTS_PATCH = 'pipelined-starts';
