/** Metric names shared by workflow code (which cannot import prom-client) and the worker. */

/** Automatic pauses of a batch on a recording-system outage, by target (from the batch workflow). */
export const OUTAGE_PAUSES_METRIC = 'image_sync_outage_pauses_total';
