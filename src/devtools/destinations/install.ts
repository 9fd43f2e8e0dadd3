/**
 * The real servers the destination tests, the demo and the bench run image-sync against:
 * versitygw (an S3-compatible gateway, a Go module built with `go install`, pinned, cached under
 * ~/.cache/image-sync), OpenSSH's sshd and lighttpd with mod_webdav (Debian's `openssh-server`,
 * `lighttpd` and `lighttpd-mod-webdav` packages; .ci/run installs them).
 * `npm run destinations:install` builds what is missing and checks the rest.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goInstall, isExecutable } from '../../temporal/cli-binary';
import { findGo } from '../../temporal/server-binary';

export const VERSITYGW_VERSION = 'v1.8.0';
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw';
export const SSHD_PATH = '/usr/sbin/sshd';
export const LIGHTTPD_PATH = '/usr/sbin/lighttpd';

function cacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'image-sync');
}

/** Where the pinned versitygw is cached: `<cache>/versitygw-<version>/versitygw`. */
export function versitygwCachePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), `versitygw-${VERSITYGW_VERSION.replace(/^v/, '')}`, 'versitygw');
}

/** VERSITYGW_PATH, else the cached build; undefined when neither is there. */
export function findVersitygw(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.VERSITYGW_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`VERSITYGW_PATH=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const cached = versitygwCachePath(env);
  return isExecutable(cached) ? cached : undefined;
}

/** Finds versitygw, building the pinned version into the cache with `go install` when missing. */
export async function ensureVersitygw(
  opts: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<string> {
  const env = opts.env ?? process.env;
  const found = findVersitygw(env);
  if (found) return found;
  const go = findGo(env);
  if (!go) throw new Error(`versitygw ${VERSITYGW_VERSION} is not installed and Go is not available to build it`);
  const target = versitygwCachePath(env);
  mkdirSync(path.dirname(target), { recursive: true });
  const gobin = mkdtempSync(path.join(path.dirname(target), '.install-'));
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  log(`Installing versitygw ${VERSITYGW_VERSION} into ${path.dirname(target)} (go install; minutes the first time)...`);
  try {
    await goInstall(go, `${VERSITYGW_MODULE}@${VERSITYGW_VERSION}`, { env, gobin, log, what: 'S3 gateway' }).catch(
      (err: unknown) => {
        throw new Error(`go install of versitygw ${VERSITYGW_VERSION} failed: ${String(err)}`);
      },
    );
    renameSync(path.join(gobin, 'versitygw'), target);
  } finally {
    rmSync(gobin, { recursive: true, force: true });
  }
  return target;
}

/** Debian's sshd with internal-sftp, or why it cannot be used. */
export function sshdProblem(): string | undefined {
  if (!existsSync(SSHD_PATH)) {
    return `${SSHD_PATH} is missing: apt-get install openssh-server openssh-sftp-server (.ci/run does)`;
  }
  return undefined;
}

/** Debian's lighttpd with mod_webdav, or why it cannot be used. */
export function lighttpdProblem(): string | undefined {
  if (!existsSync(LIGHTTPD_PATH) || !existsSync('/usr/lib/lighttpd/mod_webdav.so')) {
    return `lighttpd with mod_webdav is missing: apt-get install lighttpd lighttpd-mod-webdav (.ci/run does)`;
  }
  return undefined;
}

async function main(): Promise<void> {
  const started = Date.now();
  const gw = await ensureVersitygw();
  console.log(`versitygw ${VERSITYGW_VERSION}: ${gw} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  const sshd = sshdProblem();
  if (sshd) throw new Error(sshd);
  console.log(`sshd: ${SSHD_PATH}`);
  const lighttpd = lighttpdProblem();
  if (lighttpd) throw new Error(lighttpd);
  console.log(`lighttpd: ${LIGHTTPD_PATH}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
