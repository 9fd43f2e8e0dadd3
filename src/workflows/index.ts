/** The workflows the worker registers. Nothing here may touch the network, disk, clock or randomness. */
export { syncBatch } from './sync-batch';
export { syncFile } from './sync-file';
export { scheduledSync } from './scheduled-sync';
export { scheduledReconcile } from './scheduled-reconcile';
export { intake } from './intake';
