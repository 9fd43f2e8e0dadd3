/**
 * The simulator's settings: everything startSimulator accepts (the CLI validates its flags with
 * the same schema), and the fault settings that can change while it runs.
 */
import { z } from 'zod';

const probability = z
  .number()
  .min(0, 'must be a probability between 0 and 1')
  .max(1, 'must be a probability between 0 and 1');
const latency = z.number().min(0, 'must be 0 or more milliseconds');
const holdLimit = z.number().int('must be a whole number of milliseconds').min(0, 'must be 0 or more milliseconds');

export const FAULT_METHODS = ['PUT', 'GET', 'DELETE'] as const;
export type FaultMethod = (typeof FAULT_METHODS)[number];
const faultMethods = z.array(z.enum(FAULT_METHODS, 'must list only PUT, GET and DELETE'));

const faultFields = {
  /** Probability of 503 per request. */
  failRate: probability,
  /** Probability per PUT of answering 201 and keeping nothing. */
  dropRate: probability,
  /** Probability per PUT of keeping altered bytes. */
  corruptRate: probability,
  /** Probability per PUT of 422. */
  rejectRate: probability,
  /** Probability per request of holding it open without an answer. */
  timeoutRate: probability,
  /** Added to every request but /health. */
  latencyMs: latency,
  /** How long a simulated timeout holds a request before answering 504. */
  timeoutHoldMs: holdLimit,
  /** The methods faults apply to (GET covers the list); requests of other methods draw none. */
  faultMethods,
};

/** The fault settings that can change while the simulator runs (see setFaults). */
export const simulatorFaultsSchema = z.strictObject(faultFields);
export type SimulatorFaults = z.output<typeof simulatorFaultsSchema>;

/** Everything startSimulator accepts; the CLI validates its flags with it too. */
export const simulatorOptionsSchema = z.strictObject({
  /** 0 picks a free port. */
  port: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be in 0..65535')
    .max(65535, 'must be in 0..65535')
    .default(0),
  host: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  /** Folder of the files and receipts; created when missing; kept across restarts. */
  dataDir: z.string().min(1, 'must not be empty'),
  /** The bearer token every request but /health must carry. */
  token: z.string().min(1, 'must not be empty'),
  /** Makes the fault sequence repeatable; without it faults follow Math.random. */
  seed: z.number().int('must be a whole number').optional(),
  failRate: faultFields.failRate.default(0),
  dropRate: faultFields.dropRate.default(0),
  corruptRate: faultFields.corruptRate.default(0),
  rejectRate: faultFields.rejectRate.default(0),
  timeoutRate: faultFields.timeoutRate.default(0),
  latencyMs: faultFields.latencyMs.default(0),
  timeoutHoldMs: faultFields.timeoutHoldMs.default(120_000),
  faultMethods: faultFields.faultMethods.default([...FAULT_METHODS]),
});
export type SimulatorOptions = z.input<typeof simulatorOptionsSchema>;
export type ParsedSimulatorOptions = z.output<typeof simulatorOptionsSchema>;

/** The options with their defaults; throws one message naming every invalid field. */
export function parseSimulatorOptions(opts: SimulatorOptions): ParsedSimulatorOptions {
  const parsed = simulatorOptionsSchema.safeParse(opts);
  if (parsed.success) return parsed.data;
  throw new Error(`invalid simulator options:\n${z.prettifyError(parsed.error)}`, { cause: parsed.error });
}

/** The fault settings among the options. */
export function faultsOf(options: ParsedSimulatorOptions): SimulatorFaults {
  const { failRate, dropRate, corruptRate, rejectRate, timeoutRate, latencyMs, timeoutHoldMs, faultMethods } = options;
  return { failRate, dropRate, corruptRate, rejectRate, timeoutRate, latencyMs, timeoutHoldMs, faultMethods };
}
