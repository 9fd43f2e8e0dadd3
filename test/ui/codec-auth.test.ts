/**
 * The Web UI decodes payloads only for a person who signed in: in a real browser (Debian's
 * chromium), the Temporal Web UI server (the pinned binary, as production runs it) signs its user
 * in at an OpenID Connect provider (test/helpers/oidc-provider.ts) and, with the codec setting
 * `passAccessToken` and an `https://` codec endpoint, forwards the user's access token to
 * image-sync's codec server, which accepts only JWTs signed by that provider's key set
 * (test/helpers/web-ui.ts). Checked on a file workflow's input, encrypted in its history:
 * - signed in: the codec server gets the user's access token and the page shows the input
 *   decoded (plain JSON: the file's source path), not its encrypted form;
 * - a UI that forwards no credential (no sign-in, `passAccessToken` off): the codec server answers
 *   401 and the page shows only the ciphertext, under the UI's warning that its codec server
 *   could not be reached;
 * - a signed-in person whose page forwards a forged token (signed by a key the provider never
 *   published, through the UI's `AccessToken` hook): 401, ciphertext only.
 * Screenshots go to test-results/ui/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENCRYPTED_ENCODING } from '../../src/codec/encryption';
import { fileWorkflowId, type SyncItem } from '../../src/shared';
import { PROJECT_ROOT } from '../../src/temporal/cli-binary';
import { startHarness, type Harness } from '../helpers/harness';
import {
  CHROMIUM,
  launchChromium,
  newPersonContext,
  signIn,
  startWebUiStack,
  WEB_UI_USER,
  type WebUiStack,
} from '../helpers/web-ui';

const SKIP = process.env.IMAGE_SYNC_SKIP_BROWSER === '1';
const NO_BROWSER = existsSync(CHROMIUM)
  ? undefined
  : `the browser test needs Debian's chromium at ${CHROMIUM}: install it with ` +
    '`apt-get update && apt-get install -y chromium`, or set IMAGE_SYNC_SKIP_BROWSER=1 to skip this test';
const SHOTS = path.join(PROJECT_ROOT, 'test-results', 'ui');
const SEE_TIMEOUT = 30_000;
/** How the UI shows the encoding of a payload it could not decode: as the history holds it. */
const ENCRYPTED_ENCODING_B64 = Buffer.from(ENCRYPTED_ENCODING).toString('base64');

describe.skipIf(SKIP)('the Web UI decodes through the codec server only with a signed-in user’s token', () => {
  let h: Harness | undefined;
  let stack: WebUiStack<'signedIn' | 'anonymous'> | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  let item: SyncItem;
  let workflowId: string;
  let runId: string;

  beforeAll(async () => {
    if (NO_BROWSER) return;
    mkdirSync(SHOTS, { recursive: true });
    h = await startHarness();
    const items = await h.makeFiles(2, 512, 2);
    const batchId = `ui-codec-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
    const started = await h.start(items, { maxConcurrency: 2 }, batchId);
    const result = await started.handle.result();
    expect(result.recorded).toBe(2);
    item = items[0]!;
    workflowId = fileWorkflowId(batchId, item.orderId, item.fileName);
    runId = (await h.client.workflow.getHandle(workflowId).describe()).runId;
    stack = await startWebUiStack(inject('temporalAddress'), {
      signedIn: { signIn: true, passAccessToken: true },
      anonymous: { signIn: false, passAccessToken: false },
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await stack?.close();
    await h?.close();
  });

  it('the input is encrypted in the history: only a codec server can show it', async () => {
    needBrowser();
    const history = await h!.client.workflow.getHandle(workflowId).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(Buffer.from(input.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(input.data!).toString('latin1')).not.toContain(item.sourcePath);
  });

  it('signed in, the UI forwards the user’s access token and shows the input decoded', async () => {
    needBrowser();
    const { page, codecAnswers } = await person();
    await signIn(page, stack!.ui.signedIn.url);
    await openFilePage(page, stack!.ui.signedIn.url);
    await seen(page.getByText(item.sourcePath).first(), "the file's source path in the decoded input");
    await page.getByText(item.sourcePath).first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'codec-signed-in.png'), fullPage: true });

    // The input shows as plain JSON, and nothing on the page is left in its encrypted form.
    expect(await page.getByText(ENCRYPTED_ENCODING_B64).count()).toBe(0);
    expect(await page.getByText('Codec Server could not connect').locator('visible=true').count()).toBe(0);
    const answered = await codecAnswers();
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.map((a) => a.status)).not.toContain(401);
    expect(answered.map((a) => a.status)).toContain(200);
    // What reached the codec server is the access token the provider issued at this sign-in.
    const issued = stack!.oidc.issuedAccessTokens;
    expect(issued).toHaveLength(1);
    for (const a of answered) expect(a.authorization).toBe(`Bearer ${issued[0]}`);
    expect(stack!.codecVerdicts.filter((v) => v.ok).map((v) => v.detail)).toContain(WEB_UI_USER.sub);
    expect(stack!.oidc.refusals).toEqual([]);
  });

  it('a UI that forwards no credential gets 401 from the codec server and shows only the ciphertext', async () => {
    needBrowser();
    const before = stack!.codecVerdicts.length;
    const { page, codecAnswers } = await person();
    const refused = page.waitForResponse((r) => isCodecCall(r) && r.status() === 401, { timeout: SEE_TIMEOUT });
    await openFilePage(page, stack!.ui.anonymous.url);
    await refused;
    const answered = await expectRefused(
      page,
      codecAnswers,
      before,
      'codec-no-credential.png',
      /^no bearer credential/,
    );
    for (const a of answered) expect(a.authorization).toBeUndefined();
  });

  it('a signed-in page that forwards a forged token gets 401 and shows only the ciphertext', async () => {
    needBrowser();
    const forged = await stack!.oidc.forgeAccessToken();
    const before = stack!.codecVerdicts.length;
    const { page, codecAnswers, context } = await person();
    // The UI asks this hook for the token it forwards when a page defines it.
    await context.addInitScript((token) => {
      (globalThis as unknown as { AccessToken: () => Promise<string> }).AccessToken = () => Promise.resolve(token);
    }, forged);
    await signIn(page, stack!.ui.signedIn.url);
    const refused = page.waitForResponse((r) => isCodecCall(r) && r.status() === 401, { timeout: SEE_TIMEOUT });
    await openFilePage(page, stack!.ui.signedIn.url);
    await refused;
    const answered = await expectRefused(page, codecAnswers, before, 'codec-forged-token.png', /^JWT not accepted/);
    for (const a of answered) expect(a.authorization).toBe(`Bearer ${forged}`);
  });

  /** A new person (browser context) and the codec server's answers to their page's calls. */
  /**
   * What a refused page shows and what the codec server heard: the input only in its encrypted
   * form under the UI's codec warning, no plaintext, no answer 200, and every verdict since
   * `before` a refusal whose detail matches. Returns the codec answers for the caller's own checks.
   */
  async function expectRefused(
    page: Page,
    codecAnswers: () => Promise<{ status: number; authorization: string | undefined }[]>,
    before: number,
    shot: string,
    detail: RegExp,
  ): Promise<{ status: number; authorization: string | undefined }[]> {
    await seen(page.getByText(ENCRYPTED_ENCODING_B64).first(), 'the input in its encrypted form');
    await seen(
      page.getByText('Codec Server could not connect').locator('visible=true').first(),
      "the UI's codec server warning",
    );
    await page.getByText(ENCRYPTED_ENCODING_B64).first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, shot), fullPage: true });

    expect(await page.getByText(item.sourcePath).count()).toBe(0);
    const answered = await codecAnswers();
    expect(answered.map((a) => a.status)).not.toContain(200);
    const verdicts = stack!.codecVerdicts.slice(before);
    expect(verdicts.length).toBeGreaterThan(0);
    for (const v of verdicts) expect(v).toEqual({ ok: false, detail: expect.stringMatching(detail) });
    return answered;
  }

  async function person(): Promise<{
    page: Page;
    context: BrowserContext;
    codecAnswers: () => Promise<{ status: number; authorization: string | undefined }[]>;
  }> {
    const context = await newPersonContext(browser!);
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(SEE_TIMEOUT);
    const answers: Promise<{ status: number; authorization: string | undefined }>[] = [];
    page.on('response', (r) => {
      if (!isCodecCall(r)) return;
      answers.push(
        r
          .request()
          .allHeaders()
          .then((headers) => ({ status: r.status(), authorization: headers.authorization })),
      );
    });
    return { page, context, codecAnswers: () => Promise.all(answers) };
  }

  function isCodecCall(r: Response): boolean {
    return r.url().startsWith(stack!.codecUrl) && r.request().method() === 'POST';
  }

  async function openFilePage(page: Page, ui: string): Promise<void> {
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`);
    await seen(page.getByRole('heading', { name: workflowId, exact: true }), 'the file workflow heading');
    await seen(page.getByRole('heading', { name: 'Input', exact: true }), 'the Input heading');
  }
});

function needBrowser(): void {
  if (NO_BROWSER) throw new Error(NO_BROWSER);
}

async function seen(locator: ReturnType<Page['getByText']>, what: string): Promise<void> {
  try {
    await locator.waitFor({ state: 'visible', timeout: SEE_TIMEOUT });
  } catch (err) {
    throw new Error(`a person does not see ${what}: ${String(err)}`);
  }
}
