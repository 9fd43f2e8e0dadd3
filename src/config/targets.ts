/**
 * Recording-system targets: where each item's `target` sends it. Tokens come from the
 * environment only and never travel through Temporal, logs or the ledger.
 *
 * Without IMAGE_SYNC_TARGETS_FILE there is one target, `default`, from RECORDING_SYSTEM_URL
 * and RECORDING_SYSTEM_TOKEN. With it, a JSON file:
 *   { "defaultTarget": "east", "targets": { "east": { "url": "https://...", "tokenEnv": "EAST_TOKEN", "maxConcurrency": 16,
 *     "maxBytesPerSecond": 5000000, "maxRequestsPerSecond": 50 } } }
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorText } from '../errors';
import { envFrom } from './env';
import { HttpRecordingSystem } from '../recording-system/http-adapter';
import type { PutRequest, RecordingSystem, RequestOptions } from '../recording-system/port';
import type { RateLimit } from '../shared';

export const DEFAULT_TARGET = 'default';
export const DEFAULT_RECORDING_SYSTEM_URL = 'http://127.0.0.1:8787';

const targetSchema = z.object({
  url: z.url(),
  tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must name an environment variable'),
  maxConcurrency: z.number().int().min(1).max(1000).default(32),
  requestTimeoutMs: z.number().int().min(100).default(30_000),
  /** Bytes per second of uploads to this target, per batch, across all workers. */
  maxBytesPerSecond: z.number().positive().optional(),
  /** Requests (sends and verifications) per second to this target, per batch, across all workers. */
  maxRequestsPerSecond: z.number().positive().optional(),
});

const targetsFileSchema = z.object({
  defaultTarget: z.string().min(1),
  targets: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'target names are letters, digits, _ . -'), targetSchema),
});

export interface TargetConfig {
  name: string;
  url: string;
  token: string;
  maxConcurrency: number;
  requestTimeoutMs: number;
  maxBytesPerSecond?: number;
  maxRequestsPerSecond?: number;
}

export interface TargetsConfig {
  defaultTarget: string;
  targets: Map<string, TargetConfig>;
}

/**
 * The targets of this process. The variables of the configuration come parsed from
 * src/config/env.ts; the tokens a targets file names (`tokenEnv`) are read from `env`.
 */
export function loadTargetsConfig(env: NodeJS.ProcessEnv = process.env): TargetsConfig {
  const config = envFrom(env);
  const file = config.IMAGE_SYNC_TARGETS_FILE;
  if (!file) {
    const token = config.RECORDING_SYSTEM_TOKEN;
    if (!token) throw new Error('RECORDING_SYSTEM_TOKEN is not set: the recording system needs a bearer token');
    const url = config.RECORDING_SYSTEM_URL;
    const maxConcurrency = config.RECORDING_SYSTEM_MAX_CONCURRENCY;
    return {
      defaultTarget: DEFAULT_TARGET,
      targets: new Map([
        [DEFAULT_TARGET, { name: DEFAULT_TARGET, url, token, maxConcurrency, requestTimeoutMs: 30_000 }],
      ]),
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`IMAGE_SYNC_TARGETS_FILE ${file}: ${errorText(err)}`);
  }
  const parsed = targetsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`IMAGE_SYNC_TARGETS_FILE ${file}: ${issue.path.join('.')}: ${issue.message}`);
  }
  const targets = new Map<string, TargetConfig>();
  for (const [name, t] of Object.entries(parsed.data.targets)) {
    const token = env[t.tokenEnv];
    if (!token) throw new Error(`target ${name}: environment variable ${t.tokenEnv} is not set`);
    targets.set(name, {
      name,
      url: t.url,
      token,
      maxConcurrency: t.maxConcurrency,
      requestTimeoutMs: t.requestTimeoutMs,
      ...(t.maxBytesPerSecond ? { maxBytesPerSecond: t.maxBytesPerSecond } : {}),
      ...(t.maxRequestsPerSecond ? { maxRequestsPerSecond: t.maxRequestsPerSecond } : {}),
    });
  }
  if (!targets.has(parsed.data.defaultTarget)) {
    throw new Error(
      `IMAGE_SYNC_TARGETS_FILE ${file}: defaultTarget ${parsed.data.defaultTarget} is not among the targets`,
    );
  }
  return { defaultTarget: parsed.data.defaultTarget, targets };
}

/** A counting semaphore: at most `limit` holders at once. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.active += 1;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.active -= 1;
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
  list(opts?: { cursor?: string | null; limit?: number } & RequestOptions) {
    return this.gate.run(() => this.inner.list(opts));
  }
}

export interface Targets {
  /** The name a missing target resolves to. */
  resolveName(target: string | undefined): string;
  get(target: string | undefined): RecordingSystem;
  has(target: string | undefined): boolean;
  /** Every target's rate limits from the targets file, by name (empty ones too). */
  limits(): Record<string, RateLimit>;
}

export function createTargets(config: TargetsConfig): Targets {
  const systems = new Map<string, RecordingSystem>();
  for (const t of config.targets.values()) {
    const http = new HttpRecordingSystem({ baseUrl: t.url, token: t.token, requestTimeoutMs: t.requestTimeoutMs });
    systems.set(t.name, new LimitedRecordingSystem(http, t.maxConcurrency));
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
