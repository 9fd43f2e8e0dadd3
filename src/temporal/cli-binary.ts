/**
 * Finds, or installs, the pinned Temporal CLI that serves the local dev server and its Web UI.
 *
 * Order (docs/development.md, "Local tools"): TEMPORAL_CLI_PATH; `temporal` on PATH; the
 * project's .temporal/bin/temporal; `go install` of the pinned version into .temporal/bin when
 * Go is present; else the SDK's own download, which needs internet.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { appEnv } from '../config/env';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

/** The project's root: the folder holding package.json above this file. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export type TemporalCliLocation =
  { kind: 'path'; path: string; source: 'env' | 'PATH' | 'project' | 'go-install' } | { kind: 'download' };

/** Whether `file` exists and may be run. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export function projectCliPath(root = PROJECT_ROOT): string {
  return path.join(root, '.temporal', 'bin', 'temporal');
}

/** Finds an installed CLI without installing anything. */
export function findTemporalCli(
  env: NodeJS.ProcessEnv = process.env,
  root = PROJECT_ROOT,
): TemporalCliLocation | undefined {
  // Validated by the configuration (src/config/env.ts) when it is the process's own.
  const fromEnv = env === process.env ? appEnv().TEMPORAL_CLI_PATH : env.TEMPORAL_CLI_PATH?.trim() || undefined;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
    }
    return { kind: 'path', path: fromEnv, source: 'env' };
  }
  const inPath = onPath('temporal', env);
  if (inPath) return { kind: 'path', path: inPath, source: 'PATH' };
  const local = projectCliPath(root);
  if (isExecutable(local)) return { kind: 'path', path: local, source: 'project' };
  return undefined;
}

export interface InstallOptions {
  env?: NodeJS.ProcessEnv;
  root?: string;
  /** Called with progress lines (go's own output). */
  log?: (line: string) => void;
}

/**
 * Finds the CLI, installing the pinned version with `go install` when it is missing and Go is
 * present. Answers `{ kind: 'download' }` when neither works: the caller then lets the SDK
 * download its dev server.
 */
export async function ensureTemporalCli(opts: InstallOptions = {}): Promise<TemporalCliLocation> {
  const env = opts.env ?? process.env;
  const root = opts.root ?? PROJECT_ROOT;
  const found = findTemporalCli(env, root);
  if (found) return found;
  const go = onPath('go', env) ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return { kind: 'download' };
  const binDir = path.dirname(projectCliPath(root));
  mkdirSync(binDir, { recursive: true });
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  log(
    `Installing the Temporal CLI ${TEMPORAL_CLI_VERSION} into ${binDir} (go install; a few minutes the first time)...`,
  );
  await goInstall(go, `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`, { env, gobin: binDir, log, what: 'CLI' });
  const installed = projectCliPath(root);
  if (!isExecutable(installed)) throw new Error(`go install finished but ${installed} is missing`);
  return { kind: 'path', path: installed, source: 'go-install' };
}

/** The version line the CLI prints, e.g. "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)". */
export function temporalCliVersion(cliPath: string): string {
  const out = spawnSync(cliPath, ['--version'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${cliPath} --version failed: ${out.stderr}`);
  return out.stdout.trim();
}

/** Runs `go install module@version` into `gobin`, passing its output on line by line to `log`. */
export async function goInstall(
  go: string,
  moduleAtVersion: string,
  opts: { env: NodeJS.ProcessEnv; gobin: string; log: (line: string) => void; what: string },
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', moduleAtVersion], {
      env: { ...opts.env, GOBIN: opts.gobin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) opts.log(line);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`go install of the Temporal ${opts.what} failed with exit code ${code}`)),
    );
  });
}
