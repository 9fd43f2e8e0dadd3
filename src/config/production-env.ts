/**
 * The production settings of image-sync: log format, metrics port and payload encryption keys.
 * Parsed once at start; a bad value is a one-line error naming the variable (never the value:
 * the keys are secrets), and the CLI exits 2.
 *
 *   IMAGE_SYNC_LOG_FORMAT        json | text (default: text on a terminal, json otherwise)
 *   IMAGE_SYNC_METRICS_PORT      port of the Prometheus /metrics and /health endpoints (none by default)
 *   IMAGE_SYNC_ENCRYPTION_KEYS   id1:base64key[,id2:base64key]: AES-256 keys; the first encrypts, all decrypt
 */
import { z } from 'zod';

/** A 256-bit AES key and the id stored with every payload it encrypts. */
export interface EncryptionKey {
  id: string;
  key: Buffer;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses `id1:base64key[,id2:base64key]`; messages name the key id at most, never key bytes. */
export function parseEncryptionKeys(raw: string): { keys: EncryptionKey[] } | { error: string } {
  const keys: EncryptionKey[] = [];
  const entries = raw.split(',').map((entry) => entry.trim());
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    if (colon < 0) return { error: `entry ${i + 1} is not id:base64key` };
    const id = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KEY_ID.test(id)) return { error: `entry ${i + 1}: a key id is 1-64 letters, digits, . _ -` };
    if (keys.some((k) => k.id === id)) return { error: `key id ${id} appears twice` };
    const key = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
    if (key?.length !== 32) return { error: `key ${id} is not 32 bytes of base64 (AES-256)` };
    keys.push({ id, key });
  }
  return { keys };
}

/** The schema shape, for merging into a schema of the whole environment. */
export const productionEnvShape = {
  IMAGE_SYNC_LOG_FORMAT: z.enum(['json', 'text'], { error: 'must be json or text' }).optional(),
  IMAGE_SYNC_METRICS_PORT: z
    .string()
    .regex(/^\d{1,5}$/, { error: 'must be a port number from 0 to 65535' })
    .transform(Number)
    .refine((n) => n <= 65_535, { error: 'must be a port number from 0 to 65535' })
    .optional(),
  IMAGE_SYNC_ENCRYPTION_KEYS: z
    .string()
    .transform((raw, ctx): EncryptionKey[] => {
      const parsed = parseEncryptionKeys(raw);
      if ('error' in parsed) {
        ctx.addIssue({ code: 'custom', message: parsed.error });
        return z.NEVER;
      }
      return parsed.keys;
    })
    .optional(),
};

export const productionEnvSchema = z.object(productionEnvShape);
export type ProductionEnv = z.output<typeof productionEnvSchema>;

/** A setting with a bad value: exit code 2. The message names the variable, not its value. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the production settings; empty variables count as unset. */
export function parseProductionEnv(env: NodeJS.ProcessEnv = process.env): ProductionEnv {
  const input = Object.fromEntries(
    Object.keys(productionEnvShape).map((name) => [name, env[name] === '' ? undefined : env[name]]),
  );
  const result = productionEnvSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new ConfigError(`${String(issue.path[0])} ${issue.message}`);
}
