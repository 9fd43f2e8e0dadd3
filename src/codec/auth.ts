/**
 * Who may call the codec server. A request carries `Authorization: Bearer <credential>`, one of:
 * - a token the server knows by its SHA-256 hash (IMAGE_SYNC_CODEC_TOKEN_HASHES, or the tokens
 *   themselves in IMAGE_SYNC_CODEC_TOKENS[_FILE], hashed at start and never kept in plain);
 * - a JWT signed by a key of the configured JSON Web Key Set (IMAGE_SYNC_CODEC_JWKS_URL), with
 *   the configured issuer and audience when given: the Web UI forwards its user's access token
 *   this way (its codec setting `passAccessToken`).
 * Anything else is refused; the reason goes to the server's answer, never the credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { errorText } from '../errors';

export interface CodecAuthConfig {
  /** Accepted bearer tokens, in plain (hashed here). */
  tokens?: readonly string[];
  /** Accepted bearer tokens by their hash: `sha256:<hex>`. */
  tokenHashes?: readonly string[];
  /** JWTs signed by a key of this JWKS are accepted. */
  jwt?: { jwksUrl: string; issuer?: string; audience?: string };
}

export type CodecAuthVerdict = { ok: true; subject: string } | { ok: false; reason: string };

export type CodecAuthenticator = (authorization: string | undefined) => Promise<CodecAuthVerdict>;

/** The form of a token hash in IMAGE_SYNC_CODEC_TOKEN_HASHES. */
export function codecTokenHash(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** Whether the configuration admits anyone at all (a codec server refuses to start without). */
export function hasCodecCredentials(config: CodecAuthConfig): boolean {
  return (config.tokens?.length ?? 0) + (config.tokenHashes?.length ?? 0) > 0 || config.jwt !== undefined;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function createCodecAuthenticator(
  config: CodecAuthConfig,
  opts: { keySet?: JWTVerifyGetKey } = {},
): CodecAuthenticator {
  const digests = [
    ...(config.tokens ?? []).map((t) => codecTokenHash(t)),
    ...(config.tokenHashes ?? []).map((h) => h.toLowerCase()),
  ].map((h) => Buffer.from(h.slice('sha256:'.length), 'hex'));
  const jwt = config.jwt;
  const keySet = jwt
    ? (opts.keySet ?? createRemoteJWKSet(new URL(jwt.jwksUrl), { timeoutDuration: 5_000 }))
    : undefined;

  return async (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return { ok: false, reason: 'no bearer credential (Authorization: Bearer ...)' };
    const credential = match[1]!;
    const digest = createHash('sha256').update(credential, 'utf8').digest();
    // Every hash is compared, in constant time each, whichever matches.
    let known = false;
    for (const d of digests) known = timingSafeEqual(d, digest) || known;
    if (known) return { ok: true, subject: 'token' };
    if (jwt && keySet && JWT_SHAPE.test(credential)) {
      try {
        const { payload } = await jwtVerify(credential, keySet, {
          ...(jwt.issuer ? { issuer: jwt.issuer } : {}),
          ...(jwt.audience ? { audience: jwt.audience } : {}),
        });
        return { ok: true, subject: typeof payload.sub === 'string' ? payload.sub : 'jwt' };
      } catch (err) {
        return { ok: false, reason: `JWT not accepted: ${errorText(err)}` };
      }
    }
    return { ok: false, reason: 'credential not accepted' };
  };
}
