/**
 * The Temporal Web UI, in a real browser (Debian's chromium driven by playwright-core), shows a
 * finished batch the way a person reads it: the SyncBatchId query lists the batch and its file
 * workflows, the batch page's User Metadata tab gives its Summary and Current Details in words
 * (final state, counts, the failed files and why), its Search Attributes tab gives SyncState,
 * and a failed file's page says ROLLED_BACK and the reason. The UI is the Web UI server as
 * production runs it (test/helpers/web-ui.ts): the person signs in at an OpenID Connect provider,
 * and the UI forwards their access token to an HTTPS codec server that accepts only that
 * provider's tokens. The test stacks encrypt their payloads: the last test checks that a file's
 * input shows decoded through it (./codec-auth.test.ts checks the refusals). Full-page
 * screenshots go to test-results/ui/.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, FrameLocator, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENCRYPTED_ENCODING } from '../../src/codec/encryption';
import { batchWorkflowId, fileWorkflowId, type BatchResult, type SyncItem } from '../../src/shared';
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
/** Without the browser every test fails with this, rather than being skipped. */
const NO_BROWSER = existsSync(CHROMIUM)
  ? undefined
  : `the browser test needs Debian's chromium at ${CHROMIUM}: install it with ` +
    '`apt-get update && apt-get install -y chromium`, or set IMAGE_SYNC_SKIP_BROWSER=1 to skip this test';
const SHOTS = path.join(PROJECT_ROOT, 'test-results', 'ui');
/** How long a person would wait for a single-page app to show what it fetched. */
const SEE_TIMEOUT = 20_000;

const FILES = 8;
/** With this seed and a 0.4 reject rate, 3 of the 8 uploads are rejected (422), the rest recorded. */
const SEED = 2;

describe.skipIf(SKIP)('Temporal Web UI: a batch with failures, read by a person', () => {
  let h: Harness | undefined;
  let stack: WebUiStack<'signedIn'> | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let ui: string;
  let batchId: string;
  let result: BatchResult;
  let items: SyncItem[];

  beforeAll(async () => {
    if (NO_BROWSER) return;
    mkdirSync(SHOTS, { recursive: true });
    h = await startHarness({ simulator: { rejectRate: 0.4, seed: SEED } });
    items = await h.makeFiles(FILES, 1024, 4);
    batchId = `ui-web-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
    const started = await h.start(items, { maxConcurrency: FILES, maxResends: 0 }, batchId);
    result = await started.handle.result();
    await untilListed(h, batchId, result);
    stack = await startWebUiStack(inject('temporalAddress'), { signedIn: { signIn: true, passAccessToken: true } });
    ui = stack.ui.signedIn.url;
    browser = await launchChromium();
    page = await (await newPersonContext(browser)).newPage();
    page.setDefaultTimeout(SEE_TIMEOUT);
    await signIn(page, ui);
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    await h?.close();
  });

  it('the batch ends with some files recorded and some rolled back as rejected', () => {
    needBrowser();
    expect(result.state).toBe('COMPLETED_WITH_FAILURES');
    expect(result.recorded).toBeGreaterThan(0);
    expect(result.rolledBack).toBeGreaterThan(0);
    expect(result.recorded + result.rolledBack).toBe(FILES);
    expect(result.failures).toHaveLength(result.rolledBack);
    for (const f of result.failures) expect(f.reason).toMatch(/^Rejected/);
  });

  it('the SyncBatchId query lists the batch workflow and its file workflows, with SyncState as a column', async () => {
    needBrowser();
    const query = `SyncBatchId="${batchId}"`;
    await openWithRetry(
      page,
      `${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`,
      page.getByRole('link', { name: batchWorkflowId(batchId), exact: true }),
      'the batch workflow in the list',
    );
    // The query is applied as a filter a person can read.
    await personSees(page.getByRole('button', { name: /SyncBatchId\s*=/ }), 'the SyncBatchId filter');
    await personSees(page.getByRole('button', { name: new RegExp(`"${batchId}"`) }), 'the batch id in the filter');
    await personSees(page.getByText(`${FILES + 1} Workflows`, { exact: true }), `the count "${FILES + 1} Workflows"`);
    const rows = page.getByRole('row').filter({ has: page.getByRole('link', { name: /^sync-batch\// }) });
    expect(await rows.count()).toBe(FILES + 1);
    await personSees(page.getByRole('link', { name: batchWorkflowId(batchId), exact: true }), 'the batch workflow');
    for (const f of await fileIds()) {
      await personSees(page.getByRole('link', { name: f.workflowId, exact: true }), `file workflow ${f.workflowId}`);
    }

    // Every workflow ends "Completed", so a file's outcome is read from a SyncState column, which a
    // person adds with the table's settings and moves next to Status.
    await page.getByRole('button', { name: 'Collapse saved views' }).click();
    await page.getByTestId('workflows-summary-table-configuration-button').click();
    const drawer = page.getByRole('heading', { name: 'Configure Workflows Table' });
    await seen(drawer, 'the table settings');
    await page.getByRole('button', { name: 'Remove Run ID column' }).click();
    await page.getByRole('button', { name: 'Add SyncState column' }).click();
    const up = page.getByRole('button', { name: 'Move SyncState column up' });
    const columns = () =>
      page
        .getByRole('button', { name: /^Remove .+ column$/ })
        .evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')?.replace(/^Remove (.+) column$/, '$1')));
    for (let i = 0; i < 10 && (await columns()).indexOf('SyncState') > 1; i++) await up.click();
    expect((await columns()).slice(0, 3)).toEqual(['Status', 'SyncState', 'Workflow ID']);
    await page.getByRole('button', { name: 'Close Workflows Table configuration' }).click();
    await drawer.waitFor({ state: 'hidden' });
    await personSees(page.getByRole('columnheader', { name: 'SyncState' }), 'the SyncState column');

    await personSees(
      rowOf(batchWorkflowId(batchId)).getByText('COMPLETED_WITH_FAILURES', { exact: true }),
      'the batch as COMPLETED_WITH_FAILURES',
    );
    for (const f of await fileIds()) {
      await personSees(rowOf(f.workflowId).getByText(f.state, { exact: true }), `${f.workflowId} as ${f.state}`);
    }
    await page.screenshot({ path: path.join(SHOTS, 'batch-list.png'), fullPage: true });
  });

  it('the batch page says in words what happened: Summary, Current Details and the SyncState search attribute', async () => {
    needBrowser();
    await page.getByRole('link', { name: batchWorkflowId(batchId), exact: true }).click();
    await personSees(page.getByRole('heading', { name: batchWorkflowId(batchId), exact: true }), 'the batch heading');

    await page.getByRole('tab', { name: 'User Metadata' }).click();
    const summary = renderedPane(page, 'Summary');
    await personSees(
      summary.content.getByText(`image-sync batch ${batchId}: ${FILES} files, max concurrency ${FILES}, max resends 0`),
      'the static summary',
      { pane: summary.frame },
    );
    const details = renderedPane(page, 'Current Details');
    const inDetails = { pane: details.frame };
    await personSees(
      details.content.getByText('COMPLETED_WITH_FAILURES', { exact: true }),
      'the final state',
      inDetails,
    );
    await personSees(
      details.content.getByText(`batch ${batchId}: ${FILES} of ${FILES} files done`),
      'how many files are done',
      inDetails,
    );
    await personSees(
      details.content.getByText(`recorded ${result.recorded} · rolled back ${result.rolledBack} · rollback failed 0`),
      'the counts',
      inDetails,
    );
    await personSees(details.content.getByText('failed files (latest first):'), 'the failed files heading', inDetails);
    for (const f of result.failures) {
      // The pane can be shorter than the list: a person scrolls it.
      await personSees(
        details.content.getByText(`${f.orderId}/${f.fileName}: ROLLED_BACK, Rejected:`),
        `the failed file ${f.orderId}/${f.fileName} with its reason`,
        { ...inDetails, scroll: true },
      );
    }
    await details.content.getByText('COMPLETED_WITH_FAILURES', { exact: true }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'batch.png'), fullPage: true });

    await page.getByRole('tab', { name: 'Search Attributes' }).click();
    await personSees(page.getByText('"SyncState": "COMPLETED_WITH_FAILURES"'), 'the SyncState search attribute');
    await personSees(page.getByText(`"SyncFilesFailed": ${result.rolledBack}`), 'the SyncFilesFailed search attribute');
    await personSees(page.getByText(`"SyncFilesTotal": ${FILES}`), 'the SyncFilesTotal search attribute');
    await page.screenshot({ path: path.join(SHOTS, 'batch-search-attributes.png'), fullPage: true });
  });

  it('a failed file page says ROLLED_BACK and why', async () => {
    needBrowser();
    const failed = result.failures[0]!;
    const id = fileWorkflowId(batchId, failed.orderId, failed.fileName);
    await page.getByRole('tab', { name: /^Relationships/ }).click();
    await page.getByRole('link', { name: id, exact: true }).click();
    await personSees(page.getByRole('heading', { name: id, exact: true }), 'the file heading');
    await personSees(page.getByRole('link', { name: batchWorkflowId(batchId), exact: true }), 'the parent batch link');

    await page.getByRole('tab', { name: 'User Metadata' }).click();
    const summary = renderedPane(page, 'Summary');
    await personSees(
      summary.content.getByText(`${failed.orderId}/${failed.fileName} → default (batch ${batchId})`),
      'the file summary',
      { pane: summary.frame },
    );
    const details = renderedPane(page, 'Current Details');
    const inDetails = { pane: details.frame };
    await personSees(details.content.getByText('ROLLED_BACK', { exact: true }), 'the file state', inDetails);
    await personSees(details.content.getByText('resends: 0 of 0'), 'the resend count', inDetails);
    await personSees(
      details.content.getByText(`last: Rejected: 422 Unprocessable Entity: rejected by a simulated business rule`),
      'why the file was rolled back',
      inDetails,
    );
    await page.screenshot({ path: path.join(SHOTS, 'file.png'), fullPage: true });

    await page.getByRole('tab', { name: 'Search Attributes' }).click();
    await personSees(page.getByText('"SyncState": "ROLLED_BACK"'), "the file's SyncState search attribute");
  });

  it("a file's input, encrypted in its history, is shown decoded through the codec server with the person's token", async () => {
    needBrowser();
    const failed = result.failures[0]!;
    const item = items.find((i) => i.orderId === failed.orderId && i.fileName === failed.fileName)!;
    const id = fileWorkflowId(batchId, item.orderId, item.fileName);
    // What the server holds is ciphertext: only the codec server can show it.
    const history = await h!.client.workflow.getHandle(id).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(Buffer.from(input.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(input.data!).toString('latin1')).not.toContain(item.sourcePath);

    const { runId } = await h!.client.workflow.getHandle(id).describe();
    await openWithRetry(
      page,
      `${ui}/namespaces/default/workflows/${encodeURIComponent(id)}/${runId}/history`,
      page.getByRole('heading', { name: id, exact: true }),
      'the file workflow page',
    );
    await personSees(page.getByRole('heading', { name: 'Input', exact: true }), 'the Input heading');
    await personSees(page.getByText(item.sourcePath), "the file's source path in the decoded input", { scroll: true });
    await page.screenshot({ path: path.join(SHOTS, 'file-input-decoded.png'), fullPage: true });
    // Decoded for the signed-in person: the codec server let in their token, and refused nothing.
    expect(stack!.codecVerdicts.filter((v) => v.ok).map((v) => v.detail)).toContain(WEB_UI_USER.sub);
    expect(stack!.codecVerdicts.filter((v) => !v.ok)).toEqual([]);
  });

  /** The file workflows of the batch with the state each ended in. */
  async function fileIds(): Promise<{ workflowId: string; state: string }[]> {
    const failed = new Set(result.failures.map((f) => `${f.orderId}/${f.fileName}`));
    const out: { workflowId: string; state: string }[] = [];
    for await (const wf of h!.client.workflow.list({ query: `SyncBatchId="${batchId}" AND WorkflowType="syncFile"` })) {
      const key = wf.workflowId.slice(`${batchWorkflowId(batchId)}/`.length);
      out.push({ workflowId: wf.workflowId, state: failed.has(key) ? 'ROLLED_BACK' : 'RECORDED' });
    }
    expect(out).toHaveLength(FILES);
    return out;
  }

  function rowOf(workflowId: string): Locator {
    return page.getByRole('row').filter({ has: page.getByRole('link', { name: workflowId, exact: true }) });
  }
});

function needBrowser(): void {
  if (NO_BROWSER) throw new Error(NO_BROWSER);
}

/** Waits until the server's visibility store lists every workflow of the batch in its final state. */
async function untilListed(h: Harness, batchId: string, result: BatchResult): Promise<void> {
  const expected: [string, number][] = [
    [`SyncBatchId="${batchId}" AND ExecutionStatus="Completed"`, FILES + 1],
    [`SyncBatchId="${batchId}" AND SyncState="COMPLETED_WITH_FAILURES"`, 1],
    [`SyncBatchId="${batchId}" AND SyncState="ROLLED_BACK"`, result.rolledBack],
  ];
  const deadline = Date.now() + 15_000;
  for (;;) {
    const counts = await Promise.all(expected.map(([q]) => h.client.workflow.count(q).then((c) => c.count)));
    if (counts.every((c, i) => c === expected[i]![1])) return;
    if (Date.now() > deadline) {
      throw new Error(`visibility did not catch up: ${JSON.stringify(expected.map(([q], i) => [q, counts[i]]))}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Opens a URL, reloading while `ready` is not shown (a list can lag the server by a moment). */
async function openWithRetry(page: Page, url: string, ready: Locator, what: string): Promise<void> {
  await page.goto(url);
  for (let attempt = 1; ; attempt++) {
    try {
      await ready.first().waitFor({ state: 'visible', timeout: 5_000 });
      return;
    } catch (err) {
      if (attempt >= 4) throw new Error(`a person does not see ${what} at ${page.url()}: ${String(err)}`);
      await page.reload();
    }
  }
}

/** Fails with a readable message unless the element is shown on the page. */
async function seen(locator: Locator, what: string): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: SEE_TIMEOUT });
  } catch (err) {
    throw new Error(`a person does not see ${what}: ${String(err)}`);
  }
}

interface RenderedPane {
  /** The frame element that shows the rendered markdown. */
  frame: Locator;
  /** What the frame shows. */
  content: FrameLocator;
}

/** A User Metadata section (Summary, Current Details): the UI renders its markdown in a frame. */
function renderedPane(page: Page, heading: string): RenderedPane {
  const frame = page
    .locator('div')
    .filter({ has: page.getByRole('heading', { name: heading, exact: true }) })
    .filter({ has: page.locator('iframe') })
    .last()
    .locator('iframe')
    .first();
  return { frame, content: frame.contentFrame() };
}

/**
 * A person sees the text: it is shown, and the first line of it is the top-most thing at its
 * place, inside the viewport of its frame and, for text in a frame, inside that frame as the page
 * shows it (so text clipped by a scroll box, under a drawer or below a frame's edge fails).
 */
async function personSees(
  locator: Locator,
  what: string,
  opts: { pane?: Locator; scroll?: boolean } = {},
): Promise<void> {
  const el = locator.first();
  await seen(el, what);
  if (opts.scroll) await el.scrollIntoViewIfNeeded();
  const spot = await el.evaluate((node) => {
    const range = node.ownerDocument.createRange();
    range.selectNodeContents(node);
    const rect = [...range.getClientRects()].find((r) => r.width > 0 && r.height > 0) ?? node.getBoundingClientRect();
    const x = rect.left + Math.min(rect.width / 2, 20);
    const y = rect.top + rect.height / 2;
    const hit = node.ownerDocument.elementFromPoint(x, y);
    return { x, y, onTop: hit !== null && node.contains(hit), hit: hit ? hit.outerHTML.slice(0, 120) : 'nothing' };
  });
  expect(spot.onTop, `${what}: hidden, at its place a person sees ${spot.hit}`).toBe(true);
  if (!opts.pane) return;
  const frame = await opts.pane.boundingBox();
  expect(frame, `the frame showing ${what}`).not.toBeNull();
  const shown = await opts.pane.evaluate((iframe, p) => iframe.ownerDocument.elementFromPoint(p.x, p.y) === iframe, {
    x: frame!.x + spot.x,
    y: frame!.y + spot.y,
  });
  expect(shown, `${what}: its frame is hidden at that place`).toBe(true);
}
