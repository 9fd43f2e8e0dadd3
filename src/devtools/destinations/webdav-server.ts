/**
 * A local WebDAV store: Debian's lighttpd with mod_webdav (dead properties and locks in its
 * SQLite file) in the foreground on a free loopback port, over a folder, with basic
 * authentication of one user.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LIGHTTPD_PATH, lighttpdProblem } from './install';
import { freePort, startServerProcess, type ServerProcess } from './process';

export interface RunningWebDavServer {
  /** The root collection. */
  url: string;
  username: string;
  password: string;
  /** The folder the collection is. */
  root: string;
  /** The server's main process while it runs (its sessions are its descendants). */
  pid(): number | null;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startWebDavServer(opts: { dir: string }): Promise<RunningWebDavServer> {
  const problem = lighttpdProblem();
  if (problem) throw new Error(problem);
  const confDir = path.join(opts.dir, 'lighttpd');
  const root = path.join(opts.dir, 'webdav-root');
  mkdirSync(confDir, { recursive: true, mode: 0o700 });
  mkdirSync(root, { recursive: true });
  const port = await freePort();
  const username = 'imgsync';
  const password = randomBytes(12).toString('base64url');
  const users = path.join(confDir, 'users');
  writeFileSync(users, `${username}:${password}\n`, { mode: 0o600 });
  const config = path.join(confDir, 'lighttpd.conf');
  const q = (s: string) => JSON.stringify(s);
  writeFileSync(
    config,
    [
      'server.modules = ("mod_webdav", "mod_auth", "mod_authn_file")',
      `server.document-root = ${q(root)}`,
      `server.port = ${port}`,
      'server.bind = "127.0.0.1"',
      `server.errorlog = ${q(path.join(confDir, 'error.log'))}`,
      'webdav.activate = "enable"',
      'webdav.is-readonly = "disable"',
      `webdav.sqlite-db-name = ${q(path.join(confDir, 'webdav.db'))}`,
      'auth.backend = "plain"',
      `auth.backend.plain.userfile = ${q(users)}`,
      'auth.require = ("/" => ("method" => "basic", "realm" => "image-sync", "require" => "valid-user"))',
      '',
    ].join('\n'),
  );
  let proc: ServerProcess | null = null;
  const pid = () => proc?.child.pid ?? null;
  const start = async () => {
    proc = await startServerProcess('lighttpd', LIGHTTPD_PATH, ['-D', '-f', config], { port });
  };
  const stop = async () => {
    await proc?.stop();
    proc = null;
  };
  await start();
  return { url: `http://127.0.0.1:${port}`, username, password, root, pid, start, stop, close: stop };
}
