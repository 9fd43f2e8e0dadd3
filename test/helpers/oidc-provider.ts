/**
 * A small OpenID Connect identity provider for the browser tests: the Temporal Web UI server signs
 * its user in here, and the codec server checks the access token the UI forwards against this
 * provider's key set. It knows one client and one user and approves every sign-in at once (no login
 * form): what is under test is what the UI does with the tokens, not a login page.
 *
 * Endpoints (the authorization code flow, as the UI server's OIDC library uses it):
 * - `GET /.well-known/openid-configuration`: discovery; the issuer is the provider's base URL.
 * - `GET /authorize`: checks the client and redirect URI, answers 302 to the redirect URI with a
 *   one-time code and the caller's `state`; the code remembers the `nonce`.
 * - `POST /token`: the code (once, before it expires) and the client's credentials (Basic or form)
 *   for an access token (a JWT for `audience`) and an ID token (a JWT for the client, with the nonce).
 * - `GET /userinfo`: the user's claims for a valid access token.
 * - `GET /jwks`: the public signing key.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface OidcUser {
  sub: string;
  email: string;
  name: string;
}

export interface OidcProviderOptions {
  clientId: string;
  clientSecret: string;
  /** The redirect URI registered for the client (the UI server's `/auth/sso/callback`). */
  redirectUri: string;
  /** The `aud` of the access tokens (what the codec server expects). */
  audience: string;
  user: OidcUser;
  /** Lifetime of the tokens, in seconds. */
  tokenTtlSeconds?: number;
}

export interface OidcProvider {
  /** The issuer, and the base URL of every endpoint. */
  issuer: string;
  jwksUrl: string;
  /** Access tokens issued so far (a test checks the codec server saw one of them). */
  readonly issuedAccessTokens: readonly string[];
  /** Requests the provider refused, with why (a sign-in that fails says so here). */
  readonly refusals: readonly string[];
  /** Signs a token with a key this provider never published (a forged credential). */
  forgeAccessToken(): Promise<string>;
  close(): Promise<void>;
}

const KID = 'test-oidc-1';
const CODE_TTL_MS = 60_000;

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<OidcProvider> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  const keySet = createLocalJWKSet({ keys: [publicJwk] });
  const ttl = opts.tokenTtlSeconds ?? 3600;
  const codes = new Map<string, { nonce?: string; redirectUri: string; expiresAt: number }>();
  const issuedAccessTokens: string[] = [];
  const refusals: string[] = [];
  let issuer = '';

  const sign = (claims: Record<string, unknown>, audience: string, key: CryptoKey = privateKey) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' })
      .setIssuer(issuer)
      .setSubject(opts.user.sub)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .sign(key);

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const refuse = (status: number, error: string, why: string) => {
      refusals.push(`${req.method} ${url.pathname}: ${why}`);
      json(status, { error, error_description: why });
    };

    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'profile', 'email'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        claims_supported: ['sub', 'email', 'name'],
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      json(200, { keys: [publicJwk] });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('response_type') !== 'code')
        return refuse(400, 'unsupported_response_type', 'response_type is not code');
      if (q.get('client_id') !== opts.clientId) return refuse(400, 'unauthorized_client', 'unknown client_id');
      if (q.get('redirect_uri') !== opts.redirectUri) {
        return refuse(400, 'invalid_request', `redirect_uri ${q.get('redirect_uri')} is not registered`);
      }
      if (!(q.get('scope') ?? '').split(' ').includes('openid')) {
        return refuse(400, 'invalid_scope', 'the openid scope is missing');
      }
      const code = randomBytes(16).toString('base64url');
      codes.set(code, {
        nonce: q.get('nonce') ?? undefined,
        redirectUri: opts.redirectUri,
        expiresAt: Date.now() + CODE_TTL_MS,
      });
      const back = new URL(opts.redirectUri);
      back.searchParams.set('code', code);
      const state = q.get('state');
      if (state !== null) back.searchParams.set('state', state);
      res.writeHead(302, { Location: back.toString() });
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = await readForm(req);
      let clientId = form.get('client_id');
      let clientSecret = form.get('client_secret');
      const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (basic) {
        const [id, secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
        clientId = decodeURIComponent(id ?? '');
        clientSecret = decodeURIComponent(secret ?? '');
      }
      if (clientId !== opts.clientId || clientSecret !== opts.clientSecret) {
        return refuse(401, 'invalid_client', 'wrong client credentials');
      }
      if (form.get('grant_type') !== 'authorization_code') {
        return refuse(400, 'unsupported_grant_type', 'grant_type is not authorization_code');
      }
      const code = form.get('code') ?? '';
      const grant = codes.get(code);
      codes.delete(code);
      if (!grant || grant.expiresAt < Date.now()) return refuse(400, 'invalid_grant', 'unknown, used or expired code');
      if (form.get('redirect_uri') !== grant.redirectUri) return refuse(400, 'invalid_grant', 'redirect_uri differs');
      const accessToken = await sign({ scope: 'openid profile email' }, opts.audience);
      const idToken = await sign(
        {
          email: opts.user.email,
          email_verified: true,
          name: opts.user.name,
          ...(grant.nonce ? { nonce: grant.nonce } : {}),
        },
        opts.clientId,
      );
      issuedAccessTokens.push(accessToken);
      json(200, {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: ttl,
        id_token: idToken,
        scope: 'openid profile email',
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/userinfo') {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      try {
        await jwtVerify(bearer?.[1] ?? '', keySet, { issuer, audience: opts.audience });
      } catch {
        return refuse(401, 'invalid_token', 'userinfo without a valid access token');
      }
      json(200, { sub: opts.user.sub, email: opts.user.email, email_verified: true, name: opts.user.name });
      return;
    }
    json(404, { error: 'not_found' });
  };

  const server = http.createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      refusals.push(`${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    issuedAccessTokens,
    refusals,
    forgeAccessToken: async () => {
      const stranger = (await generateKeyPair('RS256')).privateKey;
      return sign({ scope: 'openid profile email' }, opts.audience, stranger);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
