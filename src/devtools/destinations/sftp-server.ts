/**
 * A local SFTP drop: Debian's OpenSSH sshd in the foreground on a free loopback port, with a
 * config of its own (a fresh host key, key-only login of the current user, `internal-sftp` and
 * nothing else). The drop's folder is an absolute path the target's `root` names; production
 * drops would add `ChrootDirectory`, which needs a root-owned path outside /tmp.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SSHD_PATH, sshdProblem } from './install';
import { freePort, startServerProcess, type ServerProcess } from './process';

export interface RunningSftpServer {
  host: string;
  port: number;
  username: string;
  /** The client's private key (OpenSSH format) and its file. */
  privateKey: string;
  privateKeyFile: string;
  /** The server's public host key as in known_hosts, for `hostKey`. */
  hostKey: string;
  /** Where files land: the target's `root`. */
  root: string;
  /** The server's main process while it runs (its sessions are its descendants). */
  pid(): number | null;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'image-sync', '-f', file], { stdio: 'ignore' });
}

export async function startSftpServer(opts: { dir: string }): Promise<RunningSftpServer> {
  const problem = sshdProblem();
  if (problem) throw new Error(problem);
  const confDir = path.join(opts.dir, 'sshd');
  const root = path.join(opts.dir, 'sftp-drop');
  mkdirSync(confDir, { recursive: true, mode: 0o700 });
  mkdirSync(root, { recursive: true });
  // sshd refuses to start without its privilege separation folder (root only).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKeyFile = path.join(confDir, 'host_ed25519');
  const clientKeyFile = path.join(confDir, 'client_ed25519');
  keygen(hostKeyFile);
  keygen(clientKeyFile);
  const username = os.userInfo().username;
  const port = await freePort();
  const authorized = path.join(confDir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${clientKeyFile}.pub`), { mode: 0o600 });
  const config = path.join(confDir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyFile}`,
      `PidFile ${path.join(confDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      `AllowUsers ${username}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PermitTTY no',
      'Subsystem sftp internal-sftp',
      'ForceCommand internal-sftp',
      '',
    ].join('\n'),
  );
  let proc: ServerProcess | null = null;
  const pid = () => proc?.child.pid ?? null;
  const start = async () => {
    proc = await startServerProcess('sshd', SSHD_PATH, ['-D', '-e', '-f', config], { port });
  };
  const stop = async () => {
    await proc?.stop();
    proc = null;
  };
  await start();
  const hostKey = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  return {
    host: '127.0.0.1',
    port,
    username,
    privateKey: readFileSync(clientKeyFile, 'utf8'),
    privateKeyFile: clientKeyFile,
    hostKey,
    root,
    pid,
    start,
    stop,
    close: stop,
  };
}
