/**
 * The Temporal Web UI as production runs it, for the browser tests: the UI server (the pinned
 * `temporal-ui-server`, see src/temporal/server-binary.ts) against the run's dev server, with
 * single sign-on at a small OIDC provider (./oidc-provider.ts) and a codec server over HTTPS (a
 * self-signed certificate made here with openssl) that accepts only JWTs signed by that provider.
 * The UI forwards its signed-in user's access token to the codec endpoint (`passAccessToken`), so
 * the UI decodes payloads only for a person who signed in.
 *
 * Several UI servers can share the codec server (each is an origin the codec server allows), for
 * instance one without sign-in that forwards nothing. The codec server's verdicts are kept, in
 * order, without the credentials.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createCodecAuthenticator } from '../../src/codec/auth';
import { EncryptionCodec } from '../../src/codec/encryption';
import { startCodecServer, type CodecServer } from '../../src/codec/server';
import { findServerPart, SERVER_PARTS } from '../../src/temporal/server-binary';
import { freePort } from '../../src/temporal/dev-server';
import { testEncryptionKeys } from './keys';
import { startOidcProvider, type OidcProvider, type OidcUser } from './oidc-provider';

export const CHROMIUM = '/usr/bin/chromium';
export const CODEC_AUDIENCE = 'image-sync-codec';
export const WEB_UI_USER: OidcUser = { sub: 'alice', email: 'alice@example.test', name: 'Alice Operator' };
const CLIENT_ID = 'temporal-ui';
const CLIENT_SECRET = 'temporal-ui-secret-5b7e';

export interface UiServerSpec {
  /** Sign-in at the OIDC provider (the UI then sends its user's token with every call). */
  signIn: boolean;
  /** The UI's codec setting `passAccessToken`. */
  passAccessToken: boolean;
}

export interface CodecVerdict {
  ok: boolean;
  /** Who was let in, or why not. */
  detail: string;
}

export interface WebUiStack<K extends string> {
  ui: Record<K, { url: string; logFile: string }>;
  codecUrl: string;
  oidc: OidcProvider;
  /** What the codec server decided, request by request (never the credential). */
  codecVerdicts: CodecVerdict[];
  close(): Promise<void>;
}

/** Fails with what to do when the UI server is not installed (tests never build it themselves). */
export function uiServerBinary(): string {
  const bin = findServerPart('ui-server');
  if (!bin) {
    throw new Error(
      `the browser test needs the Temporal Web UI server ${SERVER_PARTS['ui-server'].version}: ` +
        'install it with `npm run temporal:install-server` (or set TEMPORAL_UI_SERVER_PATH)',
    );
  }
  return bin;
}

/** A self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
async function selfSignedCert(dir: string): Promise<{ cert: Buffer; key: Buffer }> {
  const cert = path.join(dir, 'codec.pem');
  const key = path.join(dir, 'codec-key.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

function yaml(s: string): string {
  return JSON.stringify(s);
}

function uiServerConfig(args: {
  frontend: string;
  port: number;
  codecUrl: string;
  spec: UiServerSpec;
  oidc: OidcProvider;
}): string {
  const origin = `http://127.0.0.1:${args.port}`;
  const auth = args.spec.signIn
    ? `auth:
  enabled: true
  providers:
    - label: image-sync test sign-in
      type: oidc
      providerUrl: ${yaml(args.oidc.issuer)}
      clientId: ${yaml(CLIENT_ID)}
      clientSecret: ${yaml(CLIENT_SECRET)}
      scopes: [openid, profile, email]
      callbackUrl: ${yaml(`${origin}/auth/sso/callback`)}
`
    : `auth:
  enabled: false
`;
  return `# Written by the browser test (test/helpers/web-ui.ts).
temporalGrpcAddress: ${yaml(args.frontend)}
host: 127.0.0.1
port: ${args.port}
enableUi: true
defaultNamespace: default
refreshInterval: 0s
notifyOnNewVersion: false
hideLogs: false
cors:
  allowOrigins: [${yaml(origin)}]
${auth}codec:
  endpoint: ${yaml(args.codecUrl)}
  passAccessToken: ${args.spec.passAccessToken}
`;
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function untilAnswers(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(
        `the Web UI server exited with code ${child.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`,
      );
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`the Web UI server at ${url} did not answer in ${timeoutMs} ms (${logFile})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts the OIDC provider, the HTTPS codec server and one UI server per spec. */
export async function startWebUiStack<K extends string>(
  frontend: string,
  specs: Record<K, UiServerSpec>,
): Promise<WebUiStack<K>> {
  const bin = uiServerBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-web-ui-'));
  const names = Object.keys(specs) as K[];
  const ports = new Map<K, number>();
  for (const name of names) ports.set(name, await freePort('127.0.0.1'));
  const origins = names.map((n) => `http://127.0.0.1:${ports.get(n)}`);
  const signInUi = names.find((n) => specs[n].signIn);

  const children: ChildProcess[] = [];
  let codec: CodecServer | undefined;
  let oidc: OidcProvider | undefined;
  const close = async () => {
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    await codec?.close();
    await oidc?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    oidc = await startOidcProvider({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      // Only one UI signs in; the others never reach the provider.
      redirectUri: `http://127.0.0.1:${ports.get(signInUi ?? names[0]!)}/auth/sso/callback`,
      audience: CODEC_AUDIENCE,
      user: WEB_UI_USER,
    });
    const tls = await selfSignedCert(dir);
    const authenticate = createCodecAuthenticator({
      jwt: { jwksUrl: oidc.jwksUrl, issuer: oidc.issuer, audience: CODEC_AUDIENCE },
    });
    const codecVerdicts: CodecVerdict[] = [];
    codec = await startCodecServer({
      codec: new EncryptionCodec(testEncryptionKeys()),
      port: 0,
      corsOrigins: origins,
      tls,
      authenticate: async (authorization) => {
        const verdict = await authenticate(authorization);
        codecVerdicts.push({ ok: verdict.ok, detail: verdict.ok ? verdict.subject : verdict.reason });
        return verdict;
      },
    });

    const ui = {} as Record<K, { url: string; logFile: string }>;
    for (const name of names) {
      const port = ports.get(name)!;
      const root = path.join(dir, `ui-${name}`);
      mkdirSync(path.join(root, 'config'), { recursive: true });
      writeFileSync(
        path.join(root, 'config', 'test.yaml'),
        uiServerConfig({ frontend, port, codecUrl: codec.url, spec: specs[name], oidc }),
      );
      const logFile = path.join(dir, `ui-${name}.log`);
      const child = spawn(bin, ['--root', root, '--config', 'config', '--env', 'test', 'start'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const log = createWriteStream(logFile);
      for (const stream of [child.stdout, child.stderr]) stream?.pipe(log, { end: false });
      child.once('exit', () => log.end());
      const url = `http://127.0.0.1:${port}`;
      await untilAnswers(url, child, logFile, 60_000);
      ui[name] = { url, logFile };
    }
    return { ui, codecUrl: codec.url, oidc, codecVerdicts, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Debian's chromium, headless; the self-signed codec certificate is accepted. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
}

/** A browser context as a person's: its own cookies and storage; HTTPS errors ignored (self-signed codec). */
export function newPersonContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width: 1440, height: 1000 }, ignoreHTTPSErrors: true });
}

/**
 * Signs the page's person in, as a person does: the UI shows its login page, "Continue to SSO"
 * goes to the identity provider, which approves at once and sends the browser back to the UI.
 * Resolves when the UI holds the user's access token.
 */
export async function signIn(page: Page, uiUrl: string, timeoutMs = 30_000): Promise<void> {
  await page.goto(uiUrl);
  const button = page.getByRole('button', { name: 'Continue to SSO' });
  await button.waitFor({ state: 'visible', timeout: timeoutMs });
  await button.click();
  // The UI keeps its user in the page's local storage (`AuthUser`), from the cookie the sign-in sets.
  await page.waitForFunction(
    () => {
      const storage = (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage;
      try {
        const user = JSON.parse(storage.getItem('AuthUser') ?? '{}') as { accessToken?: unknown };
        return typeof user.accessToken === 'string' && user.accessToken.length > 0;
      } catch {
        return false;
      }
    },
    undefined,
    { timeout: timeoutMs },
  );
}
