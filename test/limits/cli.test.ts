/**
 * The limits and notification options as an operator types them: bad values are refused with
 * exit 2 and one line, before anything starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, tempDir } from '../cli/helpers';

let home: string;
beforeAll(async () => {
  home = await tempDir('limits-cli');
});
afterAll(() => undefined);

const run = (args: string[], extra: Record<string, string> = {}) =>
  runCli(args, { env: cliEnv(home, { TEMPORAL_ADDRESS: '127.0.0.1:1', ...extra }), cwd: home });

describe('limits and notification options', () => {
  it.each([
    [['start', '--dir', '.', '--max-bytes-per-second', '0'], /--max-bytes-per-second must be a positive number/],
    [['start', '--dir', '.', '--max-bytes-per-second', 'fast'], /--max-bytes-per-second must be a positive number/],
    [['start', '--dir', '.', '--max-requests-per-second', '-2'], /--max-requests-per-second must be a positive number/],
    [['start', '--dir', '.', '--notify', 'ftp://example.org/hook'], /--notify must be an http:\/\/ or https:\/\/ URL/],
    [['start', '--dir', '.', '--notify', 'not a url'], /--notify must be an http:\/\/ or https:\/\/ URL/],
    [['set-limits', 'b1'], /give --max-bytes-per-second N or --max-requests-per-second N/],
    [['set-limits', 'b1', '--max-bytes-per-second', '-1'], /number of 0 \(no limit\) or more/],
    [['schedule', 'create', '--dir', '.', '--every', '1h', '--notify', 'mailto:x@y'], /--notify must be an http/],
  ])('%j is refused with exit 2', async (args, message) => {
    const r = await run(args);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a bad IMAGE_SYNC_NOTIFY_URLS or IMAGE_SYNC_NOTIFY_TIMEOUT_MS with exit 2, naming the variable', async () => {
    const urls = await run(['list'], { IMAGE_SYNC_NOTIFY_URLS: 'http://ok.example/a, gopher://no' });
    expect(urls.code).toBe(2);
    expect(urls.stderr).toContain('IMAGE_SYNC_NOTIFY_URLS');
    const timeout = await run(['list'], { IMAGE_SYNC_NOTIFY_TIMEOUT_MS: '10' });
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain('IMAGE_SYNC_NOTIFY_TIMEOUT_MS');
  });

  it('documents set-limits and the start options in --help', async () => {
    const help = await run(['set-limits', '--help']);
    expect(help.stdout).toContain('--max-bytes-per-second');
    expect(help.stdout).toContain('--target');
    const start = await run(['start', '--help']);
    expect(start.stdout).toContain('--notify <url>');
    expect(start.stdout).toContain('--max-bytes-per-second <n>');
  });
});
