/**
 * Shared pieces of the recording-system tests: temporary folders, source files, a simulator
 * with its adapter, and raw HTTP requests that bypass the adapter's own checks.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import type { PutRequest } from '../../src/recording-system/port';
import type { SimulatorOptions } from '../../src/devtools/simulator/options';
import { startSimulator, type RunningSimulator } from '../../src/devtools/simulator/simulator';

export const TOKEN = 'test-token-5b1f0c7e';

export async function tempDir(prefix = 'image-sync-rs-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

export interface SourceFile {
  sourcePath: string;
  sha256: string;
  size: number;
}

/** Writes `content` (random bytes of `content` length when a number) and describes it. */
export async function writeSource(dir: string, name: string, content: Buffer | string | number): Promise<SourceFile> {
  const bytes = typeof content === 'number' ? randomBytes(content) : Buffer.from(content);
  const sourcePath = path.join(dir, name);
  await fs.writeFile(sourcePath, bytes);
  return { sourcePath, sha256: sha256Of(bytes), size: bytes.length };
}

export function sha256Of(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function putRequest(
  orderId: string,
  fileName: string,
  source: SourceFile,
  extra: Partial<PutRequest> = {},
): PutRequest {
  return {
    orderId,
    fileName,
    sourcePath: source.sourcePath,
    sha256: source.sha256,
    size: source.size,
    contentType: 'image/png',
    idempotencyKey: `key-${sha256Of(`${orderId}/${fileName}`).slice(0, 16)}`,
    ...extra,
  };
}

export interface Rig {
  dataDir: string;
  sourceDir: string;
  sim: RunningSimulator;
  client: HttpRecordingSystem;
  close(): Promise<void>;
}

/** A simulator on a fresh data folder, an adapter pointed at it, and a folder for source files. */
export async function startRig(options: Partial<SimulatorOptions> = {}, requestTimeoutMs = 10_000): Promise<Rig> {
  const dataDir = options.dataDir ?? (await tempDir('image-sync-sim-'));
  const sourceDir = await tempDir('image-sync-src-');
  const sim = await startSimulator({ token: TOKEN, ...options, dataDir });
  const client = new HttpRecordingSystem({ baseUrl: sim.url, token: TOKEN, requestTimeoutMs });
  return {
    dataDir,
    sourceDir,
    sim,
    client,
    async close() {
      await sim.close();
      await removeDir(sourceDir);
      if (!options.dataDir) await removeDir(dataDir);
    },
  };
}

export interface RawAnswer {
  status: number;
  body: string;
}

/** One HTTP request sent as written: the path is not normalised, headers are exactly these. */
export function rawRequest(
  baseUrl: string,
  method: string,
  requestPath: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: requestPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function bearer(token = TOKEN): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, it resolved');
}
