/**
 * The PostgreSQL database of the Temporal server: its URL, a first connection that checks it
 * and creates the two schemas, and Temporal's own SQL tool that sets up or upgrades them.
 *
 * One PostgreSQL database holds everything, in two PostgreSQL schemas selected through the
 * connection's search_path: `temporal` (persistence) and `temporal_visibility` (visibility).
 */
import { spawn } from 'node:child_process';
import { Client as PgClient } from 'pg';

export const PERSISTENCE_SCHEMA = 'temporal';
export const VISIBILITY_SCHEMA = 'temporal_visibility';

export interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** Reads `postgres://user[:password]@host[:port]/database`; one line naming what is wrong otherwise. */
export function parsePostgresUrl(raw: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--postgres must be a URL like postgres://user@host:5432/database, got "${raw}"`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`--postgres must start with postgres:// or postgresql://, got "${url.protocol}//"`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw new Error('--postgres must name a database, as in postgres://user@host:5432/temporal');
  }
  if (!url.hostname) throw new Error('--postgres must name a host, as in postgres://user@127.0.0.1:5432/temporal');
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username) || 'postgres',
    password: decodeURIComponent(url.password),
    database,
  };
}

export function describeTarget(t: PostgresTarget): string {
  return `${t.user}@${t.host}:${t.port}/${t.database}`;
}

/**
 * Connects once to the database: a clear error when PostgreSQL does not answer, refuses the
 * user, or the database does not exist. Then creates the two schemas when missing.
 */
export async function preparePostgres(target: PostgresTarget): Promise<void> {
  const client = new PgClient({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password || undefined,
    database: target.database,
    connectionTimeoutMillis: 5_000,
  });
  try {
    await client.connect();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: string };
    await client.end().catch(() => undefined);
    if (e.code === '3D000') {
      throw new Error(
        `PostgreSQL database "${target.database}" does not exist on ${target.host}:${target.port}: create it first (createdb -h ${target.host} -p ${target.port} -U ${target.user} ${target.database})`,
      );
    }
    if (e.code === '28P01' || e.code === '28000') {
      throw new Error(`PostgreSQL refused ${describeTarget(target)}: ${e.message}`);
    }
    throw new Error(`PostgreSQL is not reachable at ${target.host}:${target.port}: ${e.message || e.code}`);
  }
  try {
    for (const schema of [PERSISTENCE_SCHEMA, VISIBILITY_SCHEMA]) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    }
  } finally {
    await client.end();
  }
}

export interface SqlToolRun {
  args: string[];
  output: string;
}

/** Runs Temporal's SQL tool against one of the two schemas. */
async function runSqlTool(
  tool: string,
  target: PostgresTarget,
  schema: string,
  command: string[],
): Promise<SqlToolRun> {
  const args = [
    '--plugin',
    'postgres12',
    '--endpoint',
    target.host,
    '--port',
    String(target.port),
    '--user',
    target.user,
    '--database',
    target.database,
    '--connect-attributes',
    `search_path=${schema}`,
    ...command,
  ];
  // The password goes through the tool's environment variable, never its arguments.
  const env = { ...process.env, SQL_PASSWORD: target.password };
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve({ args, output });
      else {
        const last = lastErrorLine(output);
        reject(new Error(`Temporal's SQL tool failed (${command[0]} in schema ${schema}): ${last}`));
      }
    });
  });
}

function lastErrorLine(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim());
  const error = [...lines].reverse().find((l) => /error|fatal|panic/i.test(l));
  return (error ?? lines.at(-1) ?? 'no output').slice(0, 500);
}

/** Sets up (first time) or upgrades (later) Temporal's persistence and visibility schemas. */
export async function setupSchemas(tool: string, target: PostgresTarget): Promise<void> {
  for (const [schema, schemaName] of [
    [PERSISTENCE_SCHEMA, 'postgresql/v12/temporal'],
    [VISIBILITY_SCHEMA, 'postgresql/v12/visibility'],
  ] as const) {
    // Versioning tables and version 0.0 when missing; a no-op on a schema already set up.
    await runSqlTool(tool, target, schema, ['setup-schema', '-v', '0.0']);
    // Applies every versioned step above the recorded version (embedded in the tool).
    await runSqlTool(tool, target, schema, ['update-schema', '--schema-name', schemaName]);
  }
}
