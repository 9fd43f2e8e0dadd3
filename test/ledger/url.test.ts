/**
 * Choosing and opening a ledger from its URL, and the text safety applied to stored text.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ledgerUrlFromEnv,
  MAX_LEDGER_TEXT,
  openLedger,
  redactSecrets,
  safeLedgerText,
  serializeDetail,
  truncateText,
} from '../../src/ledger';
import { ledgerSql } from '../../src/ledger/testing';
import { DEFAULT_LEDGER_URL, describeLedgerLocation, parseLedgerUrl } from '../../src/ledger/url';

const tempFolders: string[] = [];
function tempFolder(): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'image-sync-ledger-url-'));
  tempFolders.push(folder);
  return folder;
}

afterAll(() => {
  for (const folder of tempFolders) rmSync(folder, { recursive: true, force: true });
});

describe('ledger URL', () => {
  it('defaults to the embedded SQLite file and reads IMAGE_SYNC_LEDGER_URL', () => {
    expect(DEFAULT_LEDGER_URL).toBe('sqlite:./.image-sync/ledger.db');
    expect(ledgerUrlFromEnv({})).toBe(DEFAULT_LEDGER_URL);
    expect(ledgerUrlFromEnv({ IMAGE_SYNC_LEDGER_URL: '  ' })).toBe(DEFAULT_LEDGER_URL);
    expect(ledgerUrlFromEnv({ IMAGE_SYNC_LEDGER_URL: ' postgres://db/ledger ' })).toBe('postgres://db/ledger');
  });

  it('resolves SQLite paths against the working directory', () => {
    expect(parseLedgerUrl('sqlite:./.image-sync/ledger.db', '/srv/app')).toEqual({
      dialect: 'sqlite',
      filename: '/srv/app/.image-sync/ledger.db',
    });
    expect(parseLedgerUrl('sqlite:/var/lib/ledger.db', '/srv/app')).toEqual({
      dialect: 'sqlite',
      filename: '/var/lib/ledger.db',
    });
    expect(parseLedgerUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', filename: ':memory:' });
  });

  it('accepts postgres:// and postgresql://, turning ?schema= into a search_path option', () => {
    expect(parseLedgerUrl('postgres://u@h:5432/db')).toEqual({
      dialect: 'postgres',
      connectionString: 'postgres://u@h:5432/db',
    });
    expect(parseLedgerUrl('postgresql://u@h/db?sslmode=disable')).toEqual({
      dialect: 'postgres',
      connectionString: 'postgresql://u@h/db?sslmode=disable',
    });
    const withSchema = parseLedgerUrl('postgres://u@h/db?schema=image_sync&application_name=x');
    expect(withSchema).toMatchObject({ dialect: 'postgres', schema: 'image_sync' });
    const params = new URLSearchParams((withSchema as { connectionString: string }).connectionString.split('?')[1]);
    expect(params.get('schema')).toBeNull();
    expect(params.get('application_name')).toBe('x');
    expect(params.get('options')).toBe('-c search_path=image_sync');

    const merged = parseLedgerUrl('postgres://u@h/db?options=-c%20statement_timeout%3D1000&schema=s1');
    const mergedParams = new URLSearchParams((merged as { connectionString: string }).connectionString.split('?')[1]);
    expect(mergedParams.get('options')).toBe('-c statement_timeout=1000 -c search_path=s1');
  });

  it.each([
    ['mysql://u@h/db', /unsupported scheme "mysql:"/],
    ['', /no scheme/],
    ['ledger.db', /no scheme/],
    ['sqlite:', /SQLite path is empty/],
    ['postgres://u@h/db?schema=Bad-Name', /schema "Bad-Name" is not a valid schema name/],
  ])('rejects %j with a clear error naming the accepted forms', (url, problem) => {
    expect(() => parseLedgerUrl(url)).toThrow(problem);
    expect(() => parseLedgerUrl(url)).toThrow(/expected sqlite:<path>.*sqlite::memory:.*postgres:\/\//);
  });

  it('names the database for messages without credentials', () => {
    expect(describeLedgerLocation(parseLedgerUrl('sqlite:/var/lib/ledger.db'))).toBe('SQLite file /var/lib/ledger.db');
    expect(describeLedgerLocation(parseLedgerUrl('sqlite::memory:'))).toBe('SQLite in memory');
    const pg = describeLedgerLocation(parseLedgerUrl('postgres://me:topsecret@db.example:5433/ledger?schema=s1'));
    expect(pg).toBe('PostgreSQL at db.example:5433/ledger schema s1');
  });

  it('openLedger rejects a bad URL, and never echoes a password', async () => {
    await expect(openLedger('mongodb://admin:topsecret@h/db')).rejects.toThrow(/invalid ledger URL/);
    await expect(openLedger('mongodb://admin:topsecret@h/db')).rejects.not.toThrow(/topsecret/);
  });
});

describe('SQLite ledger file', () => {
  it('is created, in WAL mode, inside a nested folder that did not exist', async () => {
    const file = path.join(tempFolder(), 'a', 'b', 'c', 'ledger.db');
    const ledger = await openLedger(`sqlite:${file}`);
    try {
      expect(existsSync(file)).toBe(true);
      const [mode] = await ledgerSql(ledger).query<{ journal_mode: string }>`pragma journal_mode`;
      expect(mode?.journal_mode).toBe('wal');
      const [timeout] = await ledgerSql(ledger).query<{ timeout: number }>`pragma busy_timeout`;
      expect(timeout?.timeout).toBeGreaterThanOrEqual(5000);
      await ledger.ensureBatch({ batchId: 'b', workflowId: 'sync-batch/b', total: 1, state: 'RUNNING' });
    } finally {
      await ledger.close();
    }
    const reopened = await openLedger(`sqlite:${file}`);
    try {
      expect((await reopened.getBatch('b'))?.total).toBe(1);
    } finally {
      await reopened.close();
    }
  });

  it('sqlite::memory: gives a working private ledger', async () => {
    const ledger = await openLedger('sqlite::memory:');
    try {
      expect(ledger.dialect).toBe('sqlite');
      const { seq } = await ledger.openInteraction({
        interactionId: 'i-1',
        batchId: 'b',
        orderId: 'o',
        fileName: 'f.png',
        target: 'default',
        sourcePath: '/f.png',
        sha256: 'ab'.repeat(32),
        sizeBytes: 1,
        status: 'SENDING',
      });
      expect(seq).toBe(1);
    } finally {
      await ledger.close();
      await ledger.close();
    }
  });
});

describe('ledger text safety', () => {
  it('truncates to the limit and marks the cut', () => {
    expect(truncateText('short')).toBe('short');
    const cut = truncateText('z'.repeat(MAX_LEDGER_TEXT + 1));
    expect(cut).toHaveLength(MAX_LEDGER_TEXT);
    expect(cut.endsWith('…[truncated]')).toBe(true);
    expect(truncateText('abcdef', 3)).toBe('abc');
  });

  it('masks bearer tokens, credential pairs and URL passwords', () => {
    expect(redactSecrets('Authorization: Bearer eyJhbGciOi.x-y_z')).toBe('Authorization: Bearer [redacted]');
    expect(redactSecrets('{"token":"t0k","apiKey":"k3y","size":5}')).toBe(
      '{"token":"[redacted]","apiKey":"[redacted]","size":5}',
    );
    expect(redactSecrets('password=pw&user=me')).toBe('password=[redacted]&user=me');
    expect(redactSecrets('connect postgres://me:pw@db:5432/x failed')).toBe(
      'connect postgres://me:[redacted]@db:5432/x failed',
    );
    expect(redactSecrets('checksum differs: expected ab12, got cd34')).toBe(
      'checksum differs: expected ab12, got cd34',
    );
  });

  it('serialises details: strings as they are, other values as JSON, absent as null', () => {
    expect(serializeDetail(undefined)).toBeNull();
    expect(serializeDetail(null)).toBeNull();
    expect(serializeDetail('plain')).toBe('plain');
    expect(serializeDetail({ rule: 'SIZE_MISMATCH', expected: 3 })).toBe('{"rule":"SIZE_MISMATCH","expected":3}');
    expect(serializeDetail(10n)).toBe('10');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(serializeDetail(circular)).toBe('[object Object]');
    expect(safeLedgerText(null)).toBeNull();
  });
});
