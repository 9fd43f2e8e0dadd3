/**
 * Metrics only a workflow knows, emitted through the SDK's workflow metric meter (exported by
 * the Temporal runtime's Prometheus exporter next to the SDK's own metrics; not emitted while a
 * workflow replays). Safe to import from workflow code: it touches nothing outside the sandbox.
 */
import { metricMeter } from '@temporalio/workflow';
import { OUTAGE_PAUSES_METRIC } from './metric-names';

/** Counts one automatic pause of a batch because its recording system looks down. */
export function countOutagePause(target: string): void {
  metricMeter
    .createCounter(OUTAGE_PAUSES_METRIC, 'pauses', 'Automatic batch pauses on a recording-system outage, by target')
    .add(1, { target });
}
