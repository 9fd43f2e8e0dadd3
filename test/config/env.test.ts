/**
 * The configuration: every variable of the documentation (src/config/env-docs.ts) is parsed by one
 * schema, and a bad value of each is refused with one line naming it (exit 2 from the CLI),
 * never echoing a secret.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES, EnvError, FILE_ENV_NAMES, parseEnv } from '../../src/config/env';
import { ENV_DOCS } from '../../src/config/env-docs';
import { cliEnv, reasonLines, runCli } from '../cli/helpers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'image-sync-env-'));
const aFile = path.join(dir, 'file.pem');
writeFileSync(aFile, '-----BEGIN CERTIFICATE-----\n');
const notExecutable = aFile;
const executable = path.join(dir, 'temporal');
writeFileSync(executable, '#!/bin/sh\n');
chmodSync(executable, 0o755);

/** For each variable: values it refuses, and what its line must say it accepts. */
const BAD: Record<string, { values: string[]; accepts: RegExp; secret?: boolean }> = {
  TEMPORAL_ADDRESS: { values: ['http://localhost:7233', 'localhost:99999', 'local host:1'], accepts: /host:port/ },
  TEMPORAL_NAMESPACE: { values: ['my namespace'], accepts: /namespace name/ },
  TEMPORAL_API_KEY: { values: ['key with spaces'], accepts: /API key/, secret: true },
  TEMPORAL_PROFILE: { values: ['pro/file'], accepts: /profile name/ },
  TEMPORAL_CONFIG_FILE: { values: [path.join(dir, 'missing.toml'), dir], accepts: /existing TOML file/ },
  TEMPORAL_TLS: { values: ['yes', 'on'], accepts: /true, false, 1 or 0/ },
  TEMPORAL_TLS_CLIENT_CERT_PATH: { values: [path.join(dir, 'nope.pem')], accepts: /existing PEM file/ },
  TEMPORAL_TLS_CLIENT_KEY_PATH: { values: [path.join(dir, 'nope.key')], accepts: /existing PEM file/ },
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: { values: [path.join(dir, 'nope.ca')], accepts: /existing PEM file/ },
  TEMPORAL_TLS_CLIENT_CERT_DATA: { values: ['not pem'], accepts: /PEM text/, secret: true },
  TEMPORAL_TLS_CLIENT_KEY_DATA: { values: ['not pem'], accepts: /PEM text/, secret: true },
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: { values: ['not pem'], accepts: /PEM text/ },
  TEMPORAL_TLS_SERVER_NAME: { values: ['two words'], accepts: /host name/ },
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: { values: ['maybe'], accepts: /true, false, 1 or 0/ },
  IMAGE_SYNC_TASK_QUEUE: { values: ['two words', 'q'.repeat(256)], accepts: /task queue name/ },
  RECORDING_SYSTEM_URL: { values: ['not a url', 'ftp://files.example/x'], accepts: /http:\/\/ or https:\/\/ URL/ },
  RECORDING_SYSTEM_TOKEN: { values: ['to ken', 'tok\u0001en'], accepts: /bearer token/, secret: true },
  RECORDING_SYSTEM_MAX_CONCURRENCY: { values: ['0', 'abc', '-1', '1001', '2.5', '1e3'], accepts: /1 to 1000/ },
  IMAGE_SYNC_TARGETS_FILE: { values: [path.join(dir, 'targets.json')], accepts: /existing JSON file/ },
  IMAGE_SYNC_LEDGER_URL: {
    values: ['mysql://h/db', 'sqlite:', 'postgres://h/db?schema=Bad-Name'],
    accepts: /sqlite:<path>/,
  },
  IMAGE_SYNC_LOG_LEVEL: { values: ['verbose', 'inf'], accepts: /TRACE, DEBUG, INFO, WARN, ERROR/ },
  IMAGE_SYNC_SHUTDOWN_GRACE_MS: { values: ['-5', 'soon', '600001', '1.5'], accepts: /0 to 600000/ },
  IMAGE_SYNC_STARTUP_TIMEOUT_MS: { values: ['999', 'never', '3600001'], accepts: /1000 to 3600000/ },
  IMAGE_SYNC_CODEC_TOKENS: {
    values: ['short', 'a-long-enough-token,with space in it'],
    accepts: /at least 16 characters/,
    secret: true,
  },
  IMAGE_SYNC_CODEC_TOKEN_HASHES: { values: ['md5:abc', `sha256:${'0'.repeat(63)}`], accepts: /sha256:<64 hex digits>/ },
  IMAGE_SYNC_CODEC_JWKS_URL: { values: ['idp.example/jwks', 'ftp://idp.example/jwks'], accepts: /JSON Web Key Set/ },
  IMAGE_SYNC_CODEC_JWT_ISSUER: { values: ['two words'], accepts: /issuer/ },
  IMAGE_SYNC_CODEC_JWT_AUDIENCE: { values: ['two words'], accepts: /audience/ },
  IMAGE_SYNC_INTAKE_TOKENS: {
    values: ['short', 'a-long-enough-token,with space in it'],
    accepts: /at least 16 characters/,
    secret: true,
  },
  IMAGE_SYNC_INTAKE_ROOTS: { values: ['relative/dir', '/ok:also/relative'], accepts: /absolute folder paths/ },
  IMAGE_SYNC_INTAKE_PORT: { values: ['http', '70000', '-1'], accepts: /port number from 0 to 65535/ },
  IMAGE_SYNC_INTAKE_MAX_BODY_BYTES: { values: ['1023', '67108865', 'big'], accepts: /1024 to 67108864/ },
  IMAGE_SYNC_INTAKE_MAX_WAITING: { values: ['0', '100001', 'many'], accepts: /files, a whole number from 1 to 100000/ },
  IMAGE_SYNC_INTAKE_MAX_WAITING_BYTES: {
    values: ['16383', '1572865', '1.5M'],
    accepts: /bytes, a whole number from 16384 to 1572864/,
  },
  IMAGE_SYNC_INTAKE_TLS_CERT: { values: [path.join(dir, 'nope.pem')], accepts: /existing PEM file/ },
  IMAGE_SYNC_INTAKE_TLS_KEY: { values: [path.join(dir, 'nope.key')], accepts: /existing PEM file/ },
  IMAGE_SYNC_INTAKE_CLIENT_CA: { values: [path.join(dir, 'nope.ca')], accepts: /existing PEM file/ },
  IMAGE_SYNC_INTAKE_URL: {
    values: ['intake.example:8790', 'ftp://intake.example'],
    accepts: /http:\/\/ or https:\/\/ URL/,
  },
  IMAGE_SYNC_INTAKE_TOKEN: { values: ['to ken'], accepts: /bearer token/, secret: true },
  TEMPORAL_CLI_PATH: { values: [notExecutable, path.join(dir, 'absent')], accepts: /executable file/ },
  TEMPORAL_SERVER_PATH: { values: [notExecutable, path.join(dir, 'absent')], accepts: /executable file/ },
  TEMPORAL_SQL_TOOL_PATH: { values: [notExecutable], accepts: /executable file/ },
  TEMPORAL_UI_SERVER_PATH: { values: [notExecutable], accepts: /executable file/ },
  IMAGE_SYNC_LOG_FORMAT: { values: ['yaml', 'JSON lines'], accepts: /json or text/ },
  IMAGE_SYNC_METRICS_PORT: { values: ['http', '70000', '-1', '9464.5'], accepts: /port number from 0 to 65535/ },
  IMAGE_SYNC_NOTIFY_URLS: {
    values: ['ftp://files.example/x', 'http://ok.example/a,not a url', 'hooks.example/a'],
    accepts: /comma-separated http/,
  },
  IMAGE_SYNC_NOTIFY_TIMEOUT_MS: { values: ['999', '600001', 'soon', '2.5'], accepts: /1000 to 600000/ },
  IMAGE_SYNC_NOTIFY_SECRET: { values: ['short'], accepts: /at least 16 characters/, secret: true },
  IMAGE_SYNC_ENCRYPTION_KEYS: {
    // A key of 16 bytes, a missing id, bad base64: the value is a secret and never shown.
    values: ['k1:' + Buffer.alloc(16, 1).toString('base64'), Buffer.alloc(32, 2).toString('base64'), 'k1:not*base64'],
    accepts: /32-byte keys in base64/,
    secret: true,
  },
};

describe('configuration schema', () => {
  it('every documented variable (env-docs.ts, the reference) is in the schema and has bad-value cases here', () => {
    const documented = Object.keys(ENV_DOCS);
    expect(documented.length).toBeGreaterThan(15);
    for (const name of documented) {
      expect(ENV_NAMES, `env-docs.ts lists ${name}`).toContain(name);
      expect(BAD[name], `bad values for ${name}`).toBeDefined();
    }
    // And the schema reads nothing the documentation does not list.
    expect([...ENV_NAMES].sort()).toEqual([...new Set(documented)].sort());
  });

  it('an empty environment gives the documented defaults', () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      IMAGE_SYNC_TASK_QUEUE: 'image-sync',
      RECORDING_SYSTEM_URL: 'http://127.0.0.1:8787',
      RECORDING_SYSTEM_MAX_CONCURRENCY: 32,
      IMAGE_SYNC_LEDGER_URL: 'sqlite:./.image-sync/ledger.db',
      IMAGE_SYNC_LOG_LEVEL: 'INFO',
      IMAGE_SYNC_SHUTDOWN_GRACE_MS: 30_000,
    });
    expect(env.RECORDING_SYSTEM_TOKEN).toBeUndefined();
  });

  it('reads good values, trimmed; a blank value is unset; log levels in any case', () => {
    const env = parseEnv({
      TEMPORAL_ADDRESS: ' temporal.example:7233 ',
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_PATH: aFile,
      RECORDING_SYSTEM_MAX_CONCURRENCY: '7',
      IMAGE_SYNC_LOG_LEVEL: 'warn',
      IMAGE_SYNC_SHUTDOWN_GRACE_MS: '0',
      IMAGE_SYNC_TASK_QUEUE: '',
      TEMPORAL_CLI_PATH: executable,
    });
    expect(env).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_TLS: true,
      RECORDING_SYSTEM_MAX_CONCURRENCY: 7,
      IMAGE_SYNC_LOG_LEVEL: 'WARN',
      IMAGE_SYNC_SHUTDOWN_GRACE_MS: 0,
      IMAGE_SYNC_TASK_QUEUE: 'image-sync',
      TEMPORAL_CLI_PATH: executable,
    });
  });

  for (const [name, bad] of Object.entries(BAD)) {
    it.each(bad.values)(`${name}=%j is refused with one line naming it`, (value) => {
      let error: unknown;
      try {
        parseEnv({ [name]: value });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(EnvError);
      const message = (error as Error).message;
      expect(message.split('\n')).toHaveLength(1);
      expect(message.startsWith(`${name}=`)).toBe(true);
      expect(message).toMatch(bad.accepts);
      if (bad.secret) {
        expect(message).toContain('=(hidden) is invalid');
        expect(message).not.toContain(value.trim());
      }
    });
  }

  it('masks a password in a refused ledger URL', () => {
    expect(() => parseEnv({ IMAGE_SYNC_LEDGER_URL: 'mysql://admin:topsecret@h/db' })).toThrow(
      /^IMAGE_SYNC_LEDGER_URL=mysql:\/\/admin:\[redacted\]@h\/db is invalid/,
    );
  });
});

describe('secrets from files (<NAME>_FILE)', () => {
  const secretFile = (name: string, content: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    return file;
  };

  it('every secret variable, and every URL that may hold a password, can be given as a file', () => {
    for (const name of [
      'TEMPORAL_API_KEY',
      'RECORDING_SYSTEM_TOKEN',
      'IMAGE_SYNC_LEDGER_URL',
      'IMAGE_SYNC_ENCRYPTION_KEYS',
      'IMAGE_SYNC_NOTIFY_SECRET',
      'IMAGE_SYNC_CODEC_TOKENS',
      'IMAGE_SYNC_INTAKE_TOKENS',
      'IMAGE_SYNC_INTAKE_TOKEN',
    ]) {
      expect(FILE_ENV_NAMES, name).toContain(name);
    }
    const env = parseEnv({
      RECORDING_SYSTEM_TOKEN_FILE: secretFile('token', 'from-a-file-token\n'),
      IMAGE_SYNC_LEDGER_URL_FILE: secretFile('ledger-url', 'postgres://app:pa55word@db.example:5432/ledger\n'),
      IMAGE_SYNC_CODEC_TOKENS_FILE: secretFile('codec-tokens', 'first-codec-token-0001\nsecond-codec-token-0002\n'),
      IMAGE_SYNC_INTAKE_TOKENS_FILE: secretFile('intake-tokens', 'first-intake-token-001,second-intake-token-02\n'),
    });
    expect(env.IMAGE_SYNC_INTAKE_TOKENS).toEqual(['first-intake-token-001', 'second-intake-token-02']);
    expect(env.RECORDING_SYSTEM_TOKEN).toBe('from-a-file-token');
    expect(env.IMAGE_SYNC_LEDGER_URL).toBe('postgres://app:pa55word@db.example:5432/ledger');
    expect(env.IMAGE_SYNC_CODEC_TOKENS).toEqual(['first-codec-token-0001', 'second-codec-token-0002']);
  });

  it('refuses both NAME and NAME_FILE, a file that cannot be read, and an empty file, naming the variable only', () => {
    const token = secretFile('token-2', 'the-secret-in-the-file');
    expect(() => parseEnv({ RECORDING_SYSTEM_TOKEN: 'x', RECORDING_SYSTEM_TOKEN_FILE: token })).toThrow(
      /^RECORDING_SYSTEM_TOKEN and RECORDING_SYSTEM_TOKEN_FILE are both set/,
    );
    expect(() => parseEnv({ RECORDING_SYSTEM_TOKEN_FILE: path.join(dir, 'absent') })).toThrow(
      /^RECORDING_SYSTEM_TOKEN_FILE=.*absent cannot be read/,
    );
    expect(() => parseEnv({ RECORDING_SYSTEM_TOKEN_FILE: secretFile('empty', '\n') })).toThrow(
      /^RECORDING_SYSTEM_TOKEN_FILE=.* is empty/,
    );
    // A bad value from a file is refused like a bad value, and never shown.
    const bad = secretFile('bad-token', 'to ken');
    expect(() => parseEnv({ RECORDING_SYSTEM_TOKEN_FILE: bad })).toThrow(
      /^RECORDING_SYSTEM_TOKEN=\(hidden\) is invalid/,
    );
    // Paths that are not secrets keep their own meaning.
    expect(FILE_ENV_NAMES).not.toContain('IMAGE_SYNC_TARGETS_FILE');
  });

  it('a worker given its token as a file starts with it; a missing file exits 2 with one line', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'image-sync-env-file-'));
    const result = await runCli(['status', 'some-batch'], {
      env: cliEnv(home, { RECORDING_SYSTEM_TOKEN_FILE: path.join(dir, 'nowhere') }),
      timeoutMs: 30_000,
    });
    expect(result.code).toBe(2);
    expect(reasonLines(result.stderr)).toEqual([
      `image-sync: RECORDING_SYSTEM_TOKEN_FILE=${path.join(dir, 'nowhere')} cannot be read: ENOENT: no such file or directory, open '${path.join(dir, 'nowhere')}'`,
    ]);
  });
});

describe('the CLI with a bad configuration value', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'image-sync-env-home-'));
  // One bad value of every variable, through a real CLI process each.
  const cases = Object.entries(BAD).map(([name, bad]) => [name, bad.values[0]!, bad] as const);

  it.each(cases)('%s=%j: exit 2, one line "image-sync: NAME=value is invalid: ..."', async (name, value, bad) => {
    const result = await runCli(['status', 'some-batch'], { env: cliEnv(home, { [name]: value }), timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    const lines = reasonLines(result.stderr);
    expect(lines).toHaveLength(1);
    const shownValue = bad.secret ? '(hidden)' : value;
    expect(lines[0]).toBe(
      `image-sync: ${name}=${JSON.stringify(shownValue).slice(1, -1)} is invalid: ${lines[0]!.split(' is invalid: ')[1]}`,
    );
    expect(lines[0]).toMatch(bad.accepts);
    if (bad.secret) expect(result.stderr).not.toContain(value);
    expect(result.stdout).toBe('');
  });

  it('--help still works with a bad value', async () => {
    const result = await runCli(['--help'], { env: cliEnv(home, { RECORDING_SYSTEM_MAX_CONCURRENCY: '0' }) });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('IMAGE_SYNC_SHUTDOWN_GRACE_MS');
  });
});
