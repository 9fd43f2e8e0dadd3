/**
 * Finds, or installs, the pinned Temporal server, its SQL schema tool and its Web UI server: the
 * pieces `image-sync temporal-server` runs on PostgreSQL.
 *
 * The server is the Go module `go.temporal.io/server` at the version the pinned dev server embeds
 * (`temporal --version` of the CLI v1.5.1 says "Server 1.29.1, UI 2.42.1"); the SQL tool is its
 * `cmd/tools/sql`; the Web UI server is `github.com/temporalio/ui-server/v2` at the UI version the
 * same CLI embeds. Each is found, in order: its environment variable; the project's
 * `.temporal/bin/<name>`; else `go install` of the pinned version into `.temporal/bin`.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { goInstall, isExecutable, PROJECT_ROOT } from './cli-binary';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
export const TEMPORAL_UI_SERVER_VERSION = 'v2.42.1';

export type ServerPart = 'server' | 'sql-tool' | 'ui-server';

export interface ServerPartSpec {
  part: ServerPart;
  /** The file name under .temporal/bin, carrying the pinned version. */
  fileName: string;
  /** `go install` target. */
  module: string;
  version: string;
  /** The variable that names an installed binary instead. */
  envVar: string;
}

export const SERVER_PARTS: Record<ServerPart, ServerPartSpec> = {
  server: {
    part: 'server',
    fileName: `temporal-server-${TEMPORAL_SERVER_VERSION}`,
    module: 'go.temporal.io/server/cmd/server',
    version: TEMPORAL_SERVER_VERSION,
    envVar: 'TEMPORAL_SERVER_PATH',
  },
  'sql-tool': {
    part: 'sql-tool',
    fileName: `temporal-sql-tool-${TEMPORAL_SERVER_VERSION}`,
    module: 'go.temporal.io/server/cmd/tools/sql',
    version: TEMPORAL_SERVER_VERSION,
    envVar: 'TEMPORAL_SQL_TOOL_PATH',
  },
  'ui-server': {
    part: 'ui-server',
    fileName: `temporal-ui-server-${TEMPORAL_UI_SERVER_VERSION}`,
    module: 'github.com/temporalio/ui-server/v2/cmd/server',
    version: TEMPORAL_UI_SERVER_VERSION,
    envVar: 'TEMPORAL_UI_SERVER_PATH',
  },
};

export function projectServerPartPath(part: ServerPart, root = PROJECT_ROOT): string {
  return path.join(root, '.temporal', 'bin', SERVER_PARTS[part].fileName);
}

export function findGo(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'go'))) return path.join(dir, 'go');
  }
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined;
}

/** An installed binary of the part, without installing anything. */
export function findServerPart(
  part: ServerPart,
  env: NodeJS.ProcessEnv = process.env,
  root = PROJECT_ROOT,
): string | undefined {
  const spec = SERVER_PARTS[part];
  const fromEnv = env[spec.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${spec.envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const local = projectServerPartPath(part, root);
  return isExecutable(local) ? local : undefined;
}

export interface ServerInstallOptions {
  env?: NodeJS.ProcessEnv;
  root?: string;
  /** Progress lines (go's own output included). */
  log?: (line: string) => void;
}

/** Finds the part, installing the pinned version with `go install` when it is missing. */
export async function ensureServerPart(part: ServerPart, opts: ServerInstallOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const root = opts.root ?? PROJECT_ROOT;
  const found = findServerPart(part, env, root);
  if (found) return found;
  const spec = SERVER_PARTS[part];
  const go = findGo(env);
  if (!go) {
    throw new Error(
      `the Temporal ${part} ${spec.version} is not installed and Go is not available to build it: install Go, or set ${spec.envVar}`,
    );
  }
  const target = projectServerPartPath(part, root);
  const binDir = path.dirname(target);
  mkdirSync(binDir, { recursive: true });
  // `go install` names the binary after its folder (server, sql): build into a folder of its own.
  const gobin = mkdtempSync(path.join(binDir, `.install-${part}-`));
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  log(`Installing the Temporal ${part} ${spec.version} into ${binDir} (go install; minutes the first time)...`);
  try {
    await goInstall(go, `${spec.module}@${spec.version}`, { env, gobin, log, what: part });
    const built = path.join(gobin, path.basename(spec.module));
    if (!isExecutable(built)) throw new Error(`go install finished but ${built} is missing`);
    renameSync(built, target);
  } finally {
    rmSync(gobin, { recursive: true, force: true });
  }
  return target;
}
