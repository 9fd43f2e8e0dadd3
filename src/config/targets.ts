/**
 * Recording-system targets: where each item's `target` sends it. Credentials come from the
 * environment (or files it names) only and never travel through Temporal, logs or the ledger.
 *
 * Without IMAGE_SYNC_TARGETS_FILE there is one target, `default`, from RECORDING_SYSTEM_URL
 * and RECORDING_SYSTEM_TOKEN. With it, a JSON file:
 *   { "defaultTarget": "east", "targets": { "east": { "url": "https://...", "tokenEnv": "EAST_TOKEN", "maxConcurrency": 16,
 *     "maxBytesPerSecond": 5000000, "maxRequestsPerSecond": 50 } } }
 * Each entry's `kind` (default `http`) selects its adapter; target-kinds.ts has every kind's fields.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorText } from '../errors';
import { envFrom } from './env';
import { ConfigError } from './production-env';
import { kindProblem, resolveTarget, targetEntrySchema, TargetConfigError, type TargetConfig } from './target-kinds';
import { createRecordingSystem } from '../recording-system/factory';
import type { PutRequest, RecordingSystem, RequestOptions } from '../recording-system/port';
import type { RateLimit } from '../shared';

export type { TargetConfig } from './target-kinds';

export const DEFAULT_TARGET = 'default';
export const DEFAULT_RECORDING_SYSTEM_URL = 'http://127.0.0.1:8787';

const targetsFileSchema = z.object({
  defaultTarget: z.string().min(1),
  targets: z.record(
    z.string().regex(/^[A-Za-z0-9_.-]+$/, 'target names are letters, digits, _ . -'),
    targetEntrySchema,
  ),
});

export interface TargetsConfig {
  defaultTarget: string;
  targets: Map<string, TargetConfig>;
}

/** Where a schema issue points: `target <name>, field <field>` inside `targets`, else the path. */
function issueText(issue: z.core.$ZodIssue, raw: unknown): string {
  const [top, name, ...field] = issue.path.map(String);
  if (top === 'targets' && name !== undefined) {
    if (field.join('.') === 'kind') {
      const entry = (raw as { targets: Record<string, { kind?: unknown }> }).targets[name];
      return `target ${name}, field kind: ${kindProblem(entry?.kind)}`;
    }
    return field.length
      ? `target ${name}, field ${field.join('.')}: ${issue.message}`
      : `target ${name}: ${issue.message}`;
  }
  return `${issue.path.join('.') || 'the file'}: ${issue.message}`;
}

/**
 * The targets of this process. The variables of the configuration come parsed from
 * src/config/env.ts; the secrets a targets file names (`tokenEnv`, ...) are read from `env`.
 * A bad or incomplete configuration throws ConfigError (exit 2) naming the target and the field.
 */
export function loadTargetsConfig(env: NodeJS.ProcessEnv = process.env): TargetsConfig {
  const config = envFrom(env);
  const file = config.IMAGE_SYNC_TARGETS_FILE;
  if (!file) {
    const token = config.RECORDING_SYSTEM_TOKEN;
    if (!token) throw new ConfigError('RECORDING_SYSTEM_TOKEN is not set: the recording system needs a bearer token');
    const url = config.RECORDING_SYSTEM_URL;
    const maxConcurrency = config.RECORDING_SYSTEM_MAX_CONCURRENCY;
    return {
      defaultTarget: DEFAULT_TARGET,
      targets: new Map([
        [DEFAULT_TARGET, { kind: 'http', name: DEFAULT_TARGET, url, token, maxConcurrency, requestTimeoutMs: 30_000 }],
      ]),
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`IMAGE_SYNC_TARGETS_FILE ${file}: ${errorText(err)}`);
  }
  const parsed = targetsFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`IMAGE_SYNC_TARGETS_FILE ${file}: ${issueText(parsed.error.issues[0]!, raw)}`);
  }
  const targets = new Map<string, TargetConfig>();
  for (const [name, entry] of Object.entries(parsed.data.targets)) {
    try {
      targets.set(name, resolveTarget(name, entry, env));
    } catch (err) {
      if (err instanceof TargetConfigError) throw new ConfigError(`IMAGE_SYNC_TARGETS_FILE ${file}: ${err.message}`);
      throw err;
    }
  }
  if (!targets.has(parsed.data.defaultTarget)) {
    throw new ConfigError(
      `IMAGE_SYNC_TARGETS_FILE ${file}: defaultTarget ${parsed.data.defaultTarget} is not among the targets`,
    );
  }
  return { defaultTarget: parsed.data.defaultTarget, targets };
}

/** A counting semaphore: at most `limit` holders at once; the others wait in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}

  /** Takes a slot, waiting its turn; false, with no slot taken, when `deadline` (epoch ms) comes first. */
  acquire(deadline = Infinity): Promise<boolean> {
    if (this.active < this.limit) {
      this.active += 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      // A released slot passes straight to the waiter (`active` stays as it is).
      const handOff = () => {
        clearTimeout(timer);
        resolve(true);
      };
      if (Number.isFinite(deadline)) {
        timer = setTimeout(
          () => {
            const at = this.waiters.indexOf(handOff);
            if (at >= 0) this.waiters.splice(at, 1);
            resolve(false);
          },
          Math.max(0, deadline - Date.now()),
        );
      }
      this.waiters.push(handOff);
    });
  }

  /** Gives a slot back: to the longest waiter, or free. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active -= 1;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** Holds each request of a recording system to the target's concurrency limit. */
export class LimitedRecordingSystem implements RecordingSystem {
  private readonly gate: Semaphore;
  constructor(
    private readonly inner: RecordingSystem,
    limit: number,
  ) {
    this.gate = new Semaphore(limit);
  }
  put(req: PutRequest) {
    return this.gate.run(() => this.inner.put(req));
  }
  stat(orderId: string, fileName: string, opts?: RequestOptions) {
    return this.gate.run(() => this.inner.stat(orderId, fileName, opts));
  }
  remove(orderId: string, fileName: string, opts?: RequestOptions) {
    return this.gate.run(() => this.inner.remove(orderId, fileName, opts));
  }
  get replacesHeldCopy() {
    return this.inner.replacesHeldCopy;
  }
  removeIfOwn(orderId: string, fileName: string, idempotencyKey: string, opts?: RequestOptions) {
    return this.gate.run(() => this.inner.removeIfOwn(orderId, fileName, idempotencyKey, opts));
  }
  list(opts?: { cursor?: string | null; limit?: number } & RequestOptions) {
    return this.gate.run(() => this.inner.list(opts));
  }
  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

export interface Targets {
  /** The name a missing target resolves to. */
  resolveName(target: string | undefined): string;
  get(target: string | undefined): RecordingSystem;
  has(target: string | undefined): boolean;
  /** Every target's rate limits from the targets file, by name (empty ones too). */
  limits(): Record<string, RateLimit>;
  /** Closes the connections the targets' adapters keep open (SFTP sessions, TLS agents). */
  close(): Promise<void>;
}

export function createTargets(config: TargetsConfig): Targets {
  const systems = new Map<string, RecordingSystem>();
  for (const t of config.targets.values()) {
    systems.set(t.name, new LimitedRecordingSystem(createRecordingSystem(t), t.maxConcurrency));
  }
  const limits: Record<string, RateLimit> = {};
  for (const t of config.targets.values()) {
    limits[t.name] = {
      ...(t.maxBytesPerSecond ? { maxBytesPerSecond: t.maxBytesPerSecond } : {}),
      ...(t.maxRequestsPerSecond ? { maxRequestsPerSecond: t.maxRequestsPerSecond } : {}),
    };
  }
  return fixedTargets(systems, config.defaultTarget, limits);
}

/** Targets over recording systems made elsewhere (tests, benchmarks). */
export function fixedTargets(
  systems: Map<string, RecordingSystem>,
  defaultTarget = DEFAULT_TARGET,
  limits: Record<string, RateLimit> = {},
): Targets {
  const resolveName = (target: string | undefined) => target ?? defaultTarget;
  return {
    resolveName,
    limits: () => Object.fromEntries([...systems.keys()].map((name) => [name, { ...limits[name] }])),
    has: (target) => systems.has(resolveName(target)),
    close: async () => {
      await Promise.allSettled([...systems.values()].map(async (s) => s.close?.()));
    },
    get(target) {
      const name = resolveName(target);
      const system = systems.get(name);
      if (!system) throw new UnknownTargetError(name, [...systems.keys()]);
      return system;
    },
  };
}

export class UnknownTargetError extends Error {
  constructor(name: string, known: string[]) {
    super(`unknown target "${name}" (configured: ${known.join(', ')})`);
    this.name = 'UnknownTargetError';
  }
}
