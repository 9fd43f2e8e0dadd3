/** The recording-system port, its HTTP adapter and the simulator that serves the same contract. */
export * from './port';
export { HttpRecordingSystem, kindForStatus, type HttpRecordingSystemOptions } from './http-adapter';
export {
  FAULT_METHODS,
  startSimulator,
  simulatorFaultsSchema,
  type FaultMethod,
  simulatorOptionsSchema,
  type FaultKind,
  type RunningSimulator,
  type SimulatorFaults,
  type SimulatorOptions,
  type SimulatorStats,
} from './simulator';
