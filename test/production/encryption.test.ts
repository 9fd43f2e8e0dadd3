/**
 * Payload encryption: the codec itself (round trip, key rotation, tampering, bad keys), the
 * codec server (/encode, /decode, CORS), the histories of a batch as the Temporal CLI fetches
 * them (ciphertext only: no order id or path in any payload), decoding through the codec server,
 * and the CLI's answer to a bad key setting.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import { ENCRYPTED_ENCODING, EncryptionCodec, KEY_ID_METADATA } from '../../src/codec/encryption';
import { createCodecAuthenticator } from '../../src/codec/auth';
import { startCodecServer, type CodecServer } from '../../src/codec/server';
import { ConfigError, parseEncryptionKeys, parseProductionEnv } from '../../src/config/production-env';
import { batchWorkflowId, fileWorkflowId, type SyncItem } from '../../src/shared';
import { devServerArgs } from '../../src/temporal/dev-server';
import { cliEnv, runCli, tempDir } from '../cli/helpers';
import { startHarness, testEncryptionKeys, type Harness } from '../helpers/harness';

const run = promisify(execFile);
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const jsonPayload = (value: unknown): Payload => ({
  metadata: { encoding: utf8('json/plain') },
  data: utf8(JSON.stringify(value)),
});
const TOKEN = 'encryption-test-codec-token-51';
const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');
const keysOf = (raw: string) => {
  const parsed = parseEncryptionKeys(raw);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.keys;
};

describe('the AES-256-GCM payload codec', () => {
  it('encrypts under the first key, names it, and decodes back to the same payload', async () => {
    const codec = new EncryptionCodec(keysOf(`new:${key(1)},old:${key(2)}`));
    const original = jsonPayload({ orderId: 'ORD-SECRET-1', sourcePath: '/data/in/ORD-SECRET-1/scan.png' });
    const [encrypted] = await codec.encode([original]);
    expect(text(encrypted!.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(encrypted!.metadata![KEY_ID_METADATA])).toBe('new');
    expect(Buffer.from(encrypted!.data!).toString('latin1')).not.toContain('ORD-SECRET-1');
    const [again] = await codec.encode([original]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(encrypted!.data!)), 'a fresh IV every time').toBe(false);
    const [decoded] = await codec.decode([encrypted!]);
    expect(text(decoded!.metadata!.encoding)).toBe('json/plain');
    expect(JSON.parse(text(decoded!.data))).toEqual({
      orderId: 'ORD-SECRET-1',
      sourcePath: '/data/in/ORD-SECRET-1/scan.png',
    });
  });

  it('after a rotation, payloads written under the old key still decode; new ones use the new key', async () => {
    const before = new EncryptionCodec(keysOf(`k1:${key(1)}`));
    const [written] = await before.encode([jsonPayload('written before the rotation')]);
    const after = new EncryptionCodec(keysOf(`k2:${key(2)},k1:${key(1)}`));
    expect(JSON.parse(text((await after.decode([written!]))[0]!.data))).toBe('written before the rotation');
    const [fresh] = await after.encode([jsonPayload('after')]);
    expect(text(fresh!.metadata![KEY_ID_METADATA])).toBe('k2');
    // Once the old key is dropped, its payloads no longer decode, with a reason naming the key id.
    const dropped = new EncryptionCodec(keysOf(`k2:${key(2)}`));
    await expect(dropped.decode([written!])).rejects.toThrow(
      /key "k1", which IMAGE_SYNC_ENCRYPTION_KEYS does not list/,
    );
  });

  it('refuses a tampered payload, and one moved to another key id', async () => {
    const codec = new EncryptionCodec(keysOf(`a:${key(1)},b:${key(1)}`));
    const [encrypted] = await codec.encode([jsonPayload('x')]);
    const tampered = Buffer.from(encrypted!.data!);
    tampered[14]! ^= 1;
    await expect(codec.decode([{ ...encrypted!, data: tampered }])).rejects.toThrow(/does not authenticate/);
    // Same key bytes under another id: the key id is authenticated with the data.
    const moved = { ...encrypted!, metadata: { ...encrypted!.metadata, [KEY_ID_METADATA]: utf8('b') } };
    await expect(codec.decode([moved])).rejects.toThrow(/does not authenticate under key "b"/);
  });

  it('passes payloads it did not encrypt through', async () => {
    const codec = new EncryptionCodec(keysOf(`a:${key(1)}`));
    const plain = jsonPayload({ written: 'before encryption was turned on' });
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('names the variable and never the value of a bad key setting', () => {
    const secret = key(9);
    const cases: [string, RegExp][] = [
      [`k1:${secret.slice(0, 20)}`, /key k1 is not 32 bytes of base64/],
      [secret, /entry 1 is not id:base64key/],
      [`k1:${secret},k1:${secret}`, /key id k1 appears twice/],
      [`bad id:${secret}`, /entry 1: a key id is/],
      [`k1:${secret}!!`, /key k1 is not 32 bytes/],
    ];
    for (const [raw, message] of cases) {
      let error: unknown;
      try {
        parseProductionEnv({ IMAGE_SYNC_ENCRYPTION_KEYS: raw });
      } catch (err) {
        error = err;
      }
      expect(error, raw).toBeInstanceOf(ConfigError);
      const msg = (error as Error).message;
      expect(msg).toMatch(/^IMAGE_SYNC_ENCRYPTION_KEYS /);
      expect(msg).toMatch(message);
      expect(msg).not.toContain(secret.slice(0, 20));
      expect(msg.split('\n')).toHaveLength(1);
    }
    expect(parseProductionEnv({ IMAGE_SYNC_ENCRYPTION_KEYS: `k1:${secret}` }).IMAGE_SYNC_ENCRYPTION_KEYS).toEqual([
      { id: 'k1', key: Buffer.alloc(32, 9) },
    ]);
    expect(() => parseProductionEnv({ IMAGE_SYNC_LOG_FORMAT: 'yaml' })).toThrow(
      /^IMAGE_SYNC_LOG_FORMAT must be json or text$/,
    );
    expect(() => parseProductionEnv({ IMAGE_SYNC_METRICS_PORT: '70000' })).toThrow(/^IMAGE_SYNC_METRICS_PORT must be/);
    expect(() => parseProductionEnv({ IMAGE_SYNC_METRICS_PORT: 'x' })).toThrow(/^IMAGE_SYNC_METRICS_PORT must be/);
  });

  it('the CLI exits 2 with one line naming IMAGE_SYNC_ENCRYPTION_KEYS, without the value', async () => {
    const secret = key(5).slice(0, 30);
    for (const command of [['worker'], ['codec-server', '--port', '0'], ['status', 'some-batch']]) {
      const res = await runCli(command, {
        env: cliEnv(await tempDir('bad-key'), {
          IMAGE_SYNC_ENCRYPTION_KEYS: `k1:${secret}`,
          RECORDING_SYSTEM_TOKEN: 't',
        }),
      });
      expect(res.code, `${command.join(' ')}: ${res.stderr}`).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toContain('IMAGE_SYNC_ENCRYPTION_KEYS');
      expect(res.stderr + res.stdout).not.toContain(secret);
    }
  });
});

describe('the codec server', () => {
  let server: CodecServer;
  const ui = 'http://127.0.0.1:8233';

  beforeAll(async () => {
    server = await startCodecServer({
      codec: new EncryptionCodec(testEncryptionKeys()),
      port: 0,
      corsOrigins: [ui],
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: ui, Authorization: `Bearer ${TOKEN}`, ...headers },
      body: JSON.stringify(body),
    });

  it('encodes and decodes payloads in the JSON of Temporal codec servers', async () => {
    const plain = {
      metadata: { encoding: Buffer.from('json/plain').toString('base64') },
      data: Buffer.from('{"orderId":"ORD-7"}').toString('base64'),
    };
    const encoded = await post('/encode', { payloads: [plain] });
    expect(encoded.status).toBe(200);
    expect(encoded.headers.get('access-control-allow-origin')).toBe(ui);
    const { payloads } = (await encoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(payloads[0]!.data, 'base64').toString('latin1')).not.toContain('ORD-7');
    const decoded = await post('/decode', { payloads }, { 'X-Namespace': 'default' });
    expect(decoded.status).toBe(200);
    expect(await decoded.json()).toEqual({ payloads: [plain] });
  });

  it('answers GET /health, and `image-sync dev-server --ui-codec-endpoint` hands its URL to the Web UI', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const base = { ip: '127.0.0.1', port: 7233, namespace: 'default', logLevel: 'warn' as const, dbFile: null };
    const args = devServerArgs({ ...base, uiPort: 8233, uiCodecEndpoint: server.url });
    expect(args.slice(args.indexOf('--ui-codec-endpoint'), args.indexOf('--ui-codec-endpoint') + 2)).toEqual([
      '--ui-codec-endpoint',
      server.url,
    ]);
    expect(devServerArgs({ ...base, uiPort: 8233 })).not.toContain('--ui-codec-endpoint');
    expect(devServerArgs({ ...base, uiPort: null, uiCodecEndpoint: server.url })).not.toContain('--ui-codec-endpoint');
  });

  it("answers the browser's preflight for the allowed origin only", async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type,x-namespace',
        },
      });
    const allowed = await preflight(ui);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ui);
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    const other = await preflight('http://elsewhere.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('takes `{}` as no payloads; refuses a body that is not payloads, and a payload it cannot decrypt', async () => {
    expect((await post('/decode', { payloads: 'x' })).status).toBe(400);
    // Proto3 JSON leaves an empty list out (the Temporal CLI signalling without input sends `{}`).
    const empty = await post('/encode', {});
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ payloads: [] });
    const foreign = await new EncryptionCodec(keysOf(`other:${key(4)}`)).encode([jsonPayload('x')]);
    const res = await post('/decode', {
      payloads: foreign.map((p) => ({
        metadata: Object.fromEntries(
          Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
        data: Buffer.from(p.data!).toString('base64'),
      })),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain('"other"');
    expect((await fetch(`${server.url}/decode`)).status).toBe(404);
  });
});

/** Every payload object (metadata + data) in a JSON history, with the path of keys leading to it. */
function payloadsIn(
  node: unknown,
  at: string[] = [],
): { at: string[]; payload: { metadata?: Record<string, string>; data?: string } }[] {
  if (!node || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node.flatMap((n, i) => payloadsIn(n, [...at, String(i)]));
  const obj = node as Record<string, unknown>;
  if ('metadata' in obj && typeof obj.metadata === 'object' && obj.metadata && 'encoding' in obj.metadata) {
    return [{ at, payload: obj }];
  }
  return Object.entries(obj).flatMap(([k, v]) => payloadsIn(v, [...at, k]));
}

function isCoreMarkerData(at: string[]): boolean {
  const i = at.indexOf('markerRecordedEventAttributes');
  return i >= 0 && at[i + 1] === 'details' && (at[i + 2] === 'data' || at[i + 2] === 'patch-data');
}

/** The decoded bytes of every payload of a history, as text. */
function payloadTexts(history: unknown): string {
  return payloadsIn(history)
    .map(({ payload }) => Buffer.from(payload.data ?? '', 'base64').toString('utf8'))
    .join('\n');
}

describe('workflow histories of an encrypted batch, fetched with the Temporal CLI', () => {
  let h: Harness;
  let items: SyncItem[];
  let batchId: string;
  let codecServer: CodecServer;

  beforeAll(async () => {
    // Rejections make failures, whose messages name the file: they must be encrypted too.
    h = await startHarness({ simulator: { rejectRate: 0.4, seed: 2 } });
    items = await h.makeFiles(4, 512, 2);
    const started = await h.start(items, { maxConcurrency: 4, maxResends: 0 });
    batchId = started.batchId;
    const result = await started.handle.result();
    expect(result.rolledBack).toBeGreaterThan(0);
    codecServer = await startCodecServer({
      codec: new EncryptionCodec(testEncryptionKeys()),
      port: 0,
      corsOrigins: [],
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
    });
  });
  afterAll(async () => {
    await codecServer?.close();
    await h?.close();
  });

  const show = async (workflowId: string, extra: string[] = []) => {
    const { stdout } = await run(
      inject('temporalCliPath'),
      [
        'workflow',
        'show',
        '--workflow-id',
        workflowId,
        '--output',
        'json',
        '--address',
        inject('temporalAddress'),
        ...extra,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return JSON.parse(stdout) as unknown;
  };

  it('holds ciphertext only: no order id or path in any payload or failure message', async () => {
    const ids = [batchWorkflowId(batchId), ...items.map((i) => fileWorkflowId(batchId, i.orderId, i.fileName))];
    let checked = 0;
    for (const id of ids) {
      const history = await show(id);
      for (const { at, payload } of payloadsIn(history)) {
        // Search attributes are indexed by the server, so they are not encoded (see README).
        if (at.includes('searchAttributes')) continue;
        const where = `${id} ${at.join('.')}`;
        const raw = Buffer.from(payload.data ?? '', 'base64').toString('latin1');
        for (const item of items) {
          expect(raw, where).not.toContain(item.orderId);
          expect(raw, where).not.toContain(item.sourcePath);
        }
        // The SDK core writes its markers' own data (a local activity's sequence number, type and
        // times; a patch id) outside the codec: no input of ours is in them.
        if (isCoreMarkerData(at)) continue;
        expect(Buffer.from(payload.metadata!.encoding!, 'base64').toString(), where).toBe(ENCRYPTED_ENCODING);
        checked += 1;
      }
      // Nothing else in the history names a path either: failure messages are encoded payloads.
      const whole = JSON.stringify(history);
      expect(whole).not.toContain(h.workDir);
      expect(whole).not.toMatch(/Rejected: 422/);
    }
    expect(checked).toBeGreaterThan(ids.length * 2);
  });

  it('decodes through the codec server (the Temporal CLI given --codec-endpoint)', async () => {
    const item = items[0]!;
    const id = fileWorkflowId(batchId, item.orderId, item.fileName);
    const decoded = await show(id, ['--codec-endpoint', codecServer.url, '--codec-auth', `Bearer ${TOKEN}`]);
    expect(payloadTexts(decoded)).toContain(JSON.stringify(item.sourcePath));
    for (const { payload } of payloadsIn(decoded)) {
      expect(Buffer.from(payload.metadata!.encoding!, 'base64').toString()).not.toBe(ENCRYPTED_ENCODING);
    }
    expect(payloadTexts(await show(id))).not.toContain(item.sourcePath);
  });

  it('a history written under the current key decodes after a rotation to a new key', async () => {
    const history = await h.client.workflow.getHandle(batchWorkflowId(batchId)).fetchHistory();
    const start = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(text(start.metadata![KEY_ID_METADATA])).toBe(testEncryptionKeys()[0]!.id);
    const rotated = new EncryptionCodec([{ id: 'test-3', key: Buffer.alloc(32, 11) }, ...testEncryptionKeys()]);
    const [decoded] = await rotated.decode([start]);
    expect(JSON.parse(text(decoded!.data))).toMatchObject({ batchId });
  });
});
