/**
 * Temporal connection settings, following Temporal's own conventions: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS files and profiles (TEMPORAL_PROFILE,
 * TEMPORAL_CONFIG_FILE) through @temporalio/envconfig. The task queue is IMAGE_SYNC_TASK_QUEUE;
 * payloads are encrypted with IMAGE_SYNC_ENCRYPTION_KEYS when it is set.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { imageSyncDataConverter } from '../codec/encryption';
import { envFrom } from '../config/env';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

export interface TemporalSettings {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
  /** The same for clients and workers: the payload codec and failure converter. */
  dataConverter: DataConverter;
}

/**
 * The connection settings. The variables are validated by src/config/env.ts first; the
 * connection itself is then read by @temporalio/envconfig, as Temporal's own tools read it.
 */
export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const config = envFrom(env);
  const connectConfig = loadClientConnectConfig({
    profile: config.TEMPORAL_PROFILE,
    overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
  });
  const connectionOptions = { ...connectConfig.connectionOptions };
  connectionOptions.address ??= DEFAULT_TEMPORAL_ADDRESS;
  return {
    connectionOptions,
    namespace: connectConfig.namespace ?? 'default',
    taskQueue: config.IMAGE_SYNC_TASK_QUEUE,
    dataConverter: imageSyncDataConverter(config.IMAGE_SYNC_ENCRYPTION_KEYS),
  };
}

/** Temporal did not answer at the configured address. */
export class TemporalUnreachableError extends Error {
  constructor(
    readonly address: string,
    cause: unknown,
  ) {
    super(`cannot reach Temporal at ${address}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'TemporalUnreachableError';
  }
}

export async function connectClient(
  settings = temporalSettings(),
): Promise<{ client: Client; connection: Connection }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: 5_000 });
  } catch (err) {
    throw new TemporalUnreachableError(settings.connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS, err);
  }
  return {
    client: new Client({ connection, namespace: settings.namespace, dataConverter: settings.dataConverter }),
    connection,
  };
}
