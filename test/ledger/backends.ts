/**
 * The ledger backends the shared suite runs against. Each hands out isolated ledger URLs and
 * removes everything it created:
 * - SQLite: a file in a fresh temporary folder per URL;
 * - PostgreSQL: a fresh schema per URL (`?schema=`), named after the process, time and a
 *   counter so repeated or parallel runs never meet, dropped at cleanup.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_PG_URL = process.env.IMAGE_SYNC_TEST_PG_URL?.trim() || DEFAULT_TEST_PG_URL;
export const SKIP_PG = process.env.IMAGE_SYNC_SKIP_PG === '1';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** True when this backend is switched off for the run. */
  skipped: boolean;
  /** Fails with a clear message when the backend cannot be reached. */
  check(): Promise<void>;
  /** A ledger URL no other test uses. */
  freshUrl(): Promise<string>;
  /**
   * A URL for an isolated PostgreSQL schema selected through the connection's own search_path
   * instead of `?schema=` (exercises the current-schema path). SQLite returns a fresh URL.
   */
  freshUrlWithoutSchemaParam(): Promise<string>;
  /** Removes everything handed out so far. */
  cleanup(): Promise<void>;
}

let counter = 0;
function uniqueSuffix(): string {
  counter += 1;
  return `${process.pid}_${Date.now().toString(36)}_${counter}_${randomBytes(3).toString('hex')}`;
}

export function sqliteBackend(): Backend {
  const folders: string[] = [];
  const freshUrl = async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'image-sync-ledger-'));
    folders.push(folder);
    return `sqlite:${path.join(folder, 'ledger.db')}`;
  };
  return {
    name: 'sqlite',
    skipped: false,
    check: async () => undefined,
    freshUrl,
    freshUrlWithoutSchemaParam: freshUrl,
    cleanup: async () => {
      for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
    },
  };
}

export function postgresBackend(baseUrl: string = TEST_PG_URL): Backend {
  const schemas: string[] = [];
  const withClient = async <T>(run: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };
  const separator = baseUrl.includes('?') ? '&' : '?';
  return {
    name: 'postgres',
    skipped: SKIP_PG,
    check: async () => {
      try {
        await withClient((client) => client.query('select 1'));
      } catch (error) {
        throw new Error(
          `PostgreSQL for the ledger tests is not reachable at ${baseUrl} (${(error as Error).message}); ` +
            'set IMAGE_SYNC_TEST_PG_URL, or IMAGE_SYNC_SKIP_PG=1 to skip these tests',
        );
      }
    },
    freshUrl: async () => {
      const schema = `ledger_test_${uniqueSuffix()}`;
      schemas.push(schema);
      return `${baseUrl}${separator}schema=${schema}`;
    },
    freshUrlWithoutSchemaParam: async () => {
      const schema = `ledger_test_${uniqueSuffix()}`;
      schemas.push(schema);
      await withClient((client) => client.query(`create schema ${schema}`));
      return `${baseUrl}${separator}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    cleanup: async () => {
      const toDrop = schemas.splice(0);
      if (toDrop.length === 0) return;
      await withClient(async (client) => {
        for (const schema of toDrop) await client.query(`drop schema if exists ${schema} cascade`);
      });
    },
  };
}

export const BACKENDS: Backend[] = [sqliteBackend(), postgresBackend()];
