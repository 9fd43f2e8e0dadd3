/**
 * The codec server checks who asks: /encode and /decode need a bearer token it knows (in plain,
 * by hash, or from a file) or a JWT signed by a key of its JWKS, with the right issuer and
 * audience; anything else gets 401 and decodes nothing. `image-sync codec-server` refuses to start
 * without a configured credential (exit 2).
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codecTokenHash, createCodecAuthenticator } from '../../src/codec/auth';
import { ENCRYPTED_ENCODING, EncryptionCodec } from '../../src/codec/encryption';
import { startCodecServer, type CodecServer } from '../../src/codec/server';
import { freePort } from '../../src/temporal/dev-server';
import { cliEnv, runCli, spawnCli, stopAllClis, tempDir } from '../cli/helpers';
import { TEST_ENCRYPTION_KEYS_ENV, testEncryptionKeys } from '../helpers/keys';

const UI = 'http://127.0.0.1:8233';
const ISSUER = 'https://idp.test.example';
const AUDIENCE = 'temporal-ui';
const PLAIN_TOKEN = 'codec-token-plain-0123456789';
const HASHED_TOKEN = 'codec-token-hashed-9876543210';

/** A JWKS endpoint of one signing key (what an identity provider publishes). */
async function jwksServer(publicJwk: JWK): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ keys: [{ ...publicJwk, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function jwt(
  key: CryptoKey,
  claims: { iss?: string; aud?: string; exp?: string | number } = {},
): Promise<string> {
  return new SignJWT({ sub: 'alice@example.com' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuedAt()
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setExpirationTime(claims.exp ?? '5m')
    .sign(key);
}

const encrypted = async () => {
  const [p] = await new EncryptionCodec(testEncryptionKeys()).encode([
    { metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('"ORD-42"') },
  ]);
  return {
    metadata: Object.fromEntries(Object.entries(p!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p!.data!).toString('base64'),
  };
};

describe('the codec server checks who asks', () => {
  let server: CodecServer;
  let jwks: Awaited<ReturnType<typeof jwksServer>>;
  let signing: CryptoKey;
  let stranger: CryptoKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signing = pair.privateKey;
    stranger = (await generateKeyPair('RS256')).privateKey;
    jwks = await jwksServer(await exportJWK(pair.publicKey));
    server = await startCodecServer({
      codec: new EncryptionCodec(testEncryptionKeys()),
      port: 0,
      corsOrigins: [UI],
      authenticate: createCodecAuthenticator({
        tokens: [PLAIN_TOKEN],
        tokenHashes: [codecTokenHash(HASHED_TOKEN)],
        jwt: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE },
      }),
    });
  });
  afterAll(async () => {
    await server?.close();
    await jwks?.close();
    await stopAllClis();
  });

  const decode = async (authorization?: string) =>
    fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Origin: UI,
        ...(authorization ? { Authorization: authorization } : {}),
      },
      body: JSON.stringify({ payloads: [await encrypted()] }),
    });

  const decodedText = async (res: Response) => {
    const body = (await res.json()) as { payloads: { data: string }[] };
    return Buffer.from(body.payloads[0]!.data, 'base64').toString();
  };

  it('decodes for a known token, in plain or by its hash, and for a JWT of its JWKS', async () => {
    for (const credential of [PLAIN_TOKEN, HASHED_TOKEN, await jwt(signing)]) {
      const res = await decode(`Bearer ${credential}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(UI);
      expect(await decodedText(res)).toBe('"ORD-42"');
    }
  });

  it('answers 401 and decodes nothing without a credential, or with a wrong one', async () => {
    const wrong = [
      undefined,
      'Bearer',
      'Basic dXNlcjpwYXNz',
      'Bearer not-the-token-at-all-000',
      `Bearer ${PLAIN_TOKEN}x`,
      `Bearer ${codecTokenHash(HASHED_TOKEN)}`, // the hash is not the token
      `Bearer ${await jwt(stranger)}`, // signed by a key the JWKS does not hold
      `Bearer ${await jwt(signing, { iss: 'https://elsewhere.example' })}`,
      `Bearer ${await jwt(signing, { aud: 'another-app' })}`,
      `Bearer ${await jwt(signing, { exp: Math.floor(Date.now() / 1000) - 600 })}`,
    ];
    for (const authorization of wrong) {
      const res = await decode(authorization);
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['error']);
      expect(JSON.stringify(body)).not.toContain('ORD-42');
      const credential = authorization?.slice('Bearer '.length) ?? '';
      if (credential.length > 8) expect(JSON.stringify(body)).not.toContain(credential);
    }
    const encode = await fetch(`${server.url}/encode`, { method: 'POST', body: '{"payloads":[]}' });
    expect(encode.status).toBe(401);
  });

  it('lets only the configured Web UI origin call from a browser; /health needs no credential', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization',
        },
      });
    const allowed = await preflight(UI);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(UI);
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect((await preflight('http://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
    const other = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { Origin: 'http://evil.example', Authorization: `Bearer ${PLAIN_TOKEN}` },
      body: JSON.stringify({ payloads: [] }),
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('`image-sync codec-server` refuses to start without a credential (exit 2), and serves with tokens from a file', async () => {
    const home = await tempDir('codec-auth');
    const none = await runCli(['codec-server', '--port', '0'], {
      env: cliEnv(home, { IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV }),
    });
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/no codec credential is configured/);

    const tokens = path.join(home, 'codec-tokens');
    await writeFile(tokens, `${PLAIN_TOKEN}\n${HASHED_TOKEN}\n`, { mode: 0o600 });
    const port = await freePort();
    const proc = spawnCli(['codec-server', '--port', String(port)], {
      env: cliEnv(home, { IMAGE_SYNC_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS_ENV, IMAGE_SYNC_CODEC_TOKENS_FILE: tokens }),
    });
    await proc.waitForStdout(/accepts: 2 bearer token\(s\)/, 60_000);
    const url = `http://127.0.0.1:${port}/decode`;
    const ask = async (token?: string) =>
      fetch(url, {
        method: 'POST',
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        body: JSON.stringify({ payloads: [await encrypted()] }),
      });
    const ok = await ask(HASHED_TOKEN);
    expect(ok.status).toBe(200);
    expect(await decodedText(ok)).toBe('"ORD-42"');
    expect((await ask()).status).toBe(401);
    expect((await ask('wrong-token-0000000000')).status).toBe(401);
    expect(proc.stdout + proc.stderr).not.toContain(PLAIN_TOKEN);
    await proc.stop();
    const enc = await encrypted();
    expect(Buffer.from(enc.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
  });
});
