/**
 * `image-sync submit`, run as an operator's script runs it, against an intake server started
 * here in front of a backend that answers what each test sets: what it prints and its exit
 * code for an accepted, refused or busy submission, that it retries with the same key, and
 * its --json documents.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCodecAuthenticator } from '../../src/codec/auth';
import type { IntakeBackend, IntakeSubmission, SubmitOutcome } from '../../src/intake/backend';
import { resolveSourceRoots } from '../../src/intake/http/confine';
import { startIntakeServer, type IntakeServer } from '../../src/intake/http/server';
import { cliEnv, runCli, stopAllClis, tempDir } from '../cli/helpers';

const TOKEN = 'intake-submit-token-0123456789';

class ScriptedBackend implements IntakeBackend {
  submissions: IntakeSubmission[] = [];
  /** Answers in turn; the last one repeats. */
  script: SubmitOutcome[] = [];
  async submit(s: IntakeSubmission): Promise<SubmitOutcome> {
    this.submissions.push(s);
    return this.script.length > 1 ? this.script.shift()! : this.script[0]!;
  }
  async orderStatus() {
    return undefined;
  }
  async ready() {
    return { ok: true };
  }
  async close() {}
}

describe('image-sync submit', () => {
  let home: string;
  let root: string;
  let server: IntakeServer;
  const backend = new ScriptedBackend();
  const env = (extra: Record<string, string> = {}) =>
    cliEnv(home, { IMAGE_SYNC_INTAKE_URL: server.url, IMAGE_SYNC_INTAKE_TOKEN: TOKEN, ...extra });

  beforeAll(async () => {
    home = await tempDir('intake-submit');
    root = path.join(home, 'root');
    await mkdir(path.join(root, 'ORD-1'), { recursive: true });
    await writeFile(path.join(root, 'ORD-1', 'scan.png'), 'png');
    await writeFile(path.join(root, 'ORD-1', 'form.pdf'), 'pdf');
    server = await startIntakeServer({
      backend,
      authenticate: createCodecAuthenticator({ tokens: [TOKEN] }),
      roots: await resolveSourceRoots([root]),
      port: 0,
    });
  });

  afterAll(async () => {
    await stopAllClis();
    await server.stop(1_000);
  });

  beforeEach(() => {
    backend.submissions = [];
    backend.script = [{ kind: 'accepted', submissionId: 'sub-1', replayed: false }];
  });

  it('submits the files, prints the submission and its status URL, exit 0; --json prints one document', async () => {
    const r = await runCli(
      [
        'submit',
        'ORD-1',
        '--file',
        'a.png=ORD-1/scan.png',
        '--file',
        `${path.join(root, 'ORD-1', 'form.pdf')}`,
        '--key',
        'k-1',
      ],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Submitted 2 file(s) of order ORD-1: submission sub-1, key k-1');
    expect(r.stdout).toContain(`Status: ${server.url}/v1/orders/ORD-1`);
    expect(backend.submissions).toHaveLength(1);
    expect(backend.submissions[0]!.idempotencyKey).toBe('k-1');
    expect(backend.submissions[0]!.files.map((f) => f.fileName)).toEqual(['a.png', 'form.pdf']);

    backend.script = [{ kind: 'accepted', submissionId: 'sub-1', replayed: true }];
    const j = await runCli(['submit', 'ORD-1', '--file', 'a.png=ORD-1/scan.png', '--json'], { env: env() });
    expect(j.code, j.stderr).toBe(0);
    const doc = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({
      submissionId: 'sub-1',
      orderId: 'ORD-1',
      files: 1,
      replayed: true,
      statusUrl: `${server.url}/v1/orders/ORD-1`,
    });
    // A key of its own, printed, when none is given.
    expect(doc.idempotencyKey).toBe(backend.submissions[1]!.idempotencyKey);
    expect(String(doc.idempotencyKey)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('retries with the same key while the server is busy or away, then succeeds', async () => {
    backend.script = [
      { kind: 'in_progress' },
      { kind: 'saturated', retryAfterSeconds: 1, reason: 'full' },
      { kind: 'unavailable', reason: 'Temporal is away' },
      { kind: 'accepted', submissionId: 'sub-2', replayed: false },
    ];
    const r = await runCli(['submit', 'ORD-1', '--file', 'ORD-1/scan.png', '--key', 'k-retry', '--json'], {
      env: env(),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ submissionId: 'sub-2' });
    expect(backend.submissions.map((s) => s.idempotencyKey)).toEqual(['k-retry', 'k-retry', 'k-retry', 'k-retry']);
  });

  it('gives up on a busy server after --timeout: exit 1 naming the key to retry with', async () => {
    backend.script = [{ kind: 'saturated', retryAfterSeconds: 1, reason: 'full' }];
    const r = await runCli(
      ['submit', 'ORD-1', '--file', 'ORD-1/scan.png', '--key', 'k-busy', '--timeout', '0', '--json'],
      {
        env: env(),
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--key k-busy');
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'failed', exitCode: 1, status: 429 });
  });

  it('exits 2 with the refused fields for a bad submission, a reused key or a bad token, and without a token', async () => {
    const bad = await runCli(['submit', 'ORD-1', '--file', 'x.png=/etc/passwd', '--json'], { env: env() });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({
      code: 'invalid_input',
      exitCode: 2,
      status: 400,
      field: 'files[0].path',
    });

    backend.script = [{ kind: 'key_reused' }];
    const reused = await runCli(['submit', 'ORD-1', '--file', 'ORD-1/scan.png', '--json'], { env: env() });
    expect(reused.code).toBe(2);
    expect(JSON.parse(reused.stdout).error).toMatchObject({ code: 'refused', status: 422 });

    const unauthorized = await runCli(['submit', 'ORD-1', '--file', 'ORD-1/scan.png'], {
      env: env({ IMAGE_SYNC_INTAKE_TOKEN: 'not-the-token-0123456789' }),
    });
    expect(unauthorized.code).toBe(2);
    expect(unauthorized.stderr).toMatch(/unauthorized/);
    expect(unauthorized.stderr).not.toContain('not-the-token');

    const none = await runCli(['submit', 'ORD-1', '--file', 'ORD-1/scan.png'], {
      env: cliEnv(home, { IMAGE_SYNC_INTAKE_URL: server.url }),
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no intake token/);
    expect(backend.submissions).toHaveLength(1);
  });

  it('reads the token from --token-file, and exits 1 when the server cannot be reached', async () => {
    const file = path.join(home, 'token');
    await writeFile(file, `${TOKEN}\n`);
    const r = await runCli(['submit', 'ORD-1', '--file', 'ORD-1/scan.png', '--token-file', file], {
      env: cliEnv(home, { IMAGE_SYNC_INTAKE_URL: server.url }),
    });
    expect(r.code, r.stderr).toBe(0);
    const away = await runCli(
      ['submit', 'ORD-1', '--file', 'ORD-1/scan.png', '--url', 'http://127.0.0.1:1', '--timeout', '0'],
      {
        env: env(),
      },
    );
    expect(away.code).toBe(1);
    expect(away.stderr).toMatch(/cannot be reached/);
  });
});
