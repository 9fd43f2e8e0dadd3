/**
 * Running the image-sync CLI as a child process, the way an operator runs it: `node
 * bin/image-sync.js ...` with an explicit environment. Every process started here is tracked
 * and stopped by stopAllClis(), so a failing test leaves nothing running.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const CLI_PATH = path.join(PROJECT_ROOT, 'bin', 'image-sync.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The whole environment of the child, on top of PATH and HOME (see cliEnv). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** PATH and HOME from outside, then only what the test gives. */
export function cliEnv(home: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // IMAGE_SYNC_FROM_SOURCE: the sources under test, never a build left in dist/.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    IMAGE_SYNC_FROM_SOURCE: '1',
  };
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `image-sync-${prefix}-`));
}

const live = new Set<CliProcess>();

/** A CLI process running in the background. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private readonly listeners = new Set<() => void>();

  constructor(args: string[], opts: CliOptions) {
    // Its own process group, so that cleanup also reaches anything it started (the Temporal
    // server of `dev-server`) while signals sent by a test reach the CLI process alone.
    this.child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: opts.env,
      cwd: opts.cwd ?? PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    live.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      for (const l of this.listeners) l();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      for (const l of this.listeners) l();
    });
    this.exited = new Promise<CliResult>((resolve) => {
      this.child.once('close', (code, signal) => {
        live.delete(this);
        for (const l of this.listeners) l();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first match of `pattern` on stdout; rejects when the process ends first or time runs out. */
  waitForStdout(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return this.waitForOutput('stdout', pattern, timeoutMs);
  }

  /** The same on stderr. */
  waitForStderr(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return this.waitForOutput('stderr', pattern, timeoutMs);
  }

  private waitForOutput(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this[stream].match(pattern);
        if (m) return done(() => resolve(m));
        if (!this.running) {
          done(() =>
            reject(
              new Error(
                `the CLI ended (code ${this.child.exitCode}) before printing ${pattern} on ${stream}:\n${this.stdout}\n${this.stderr}`,
              ),
            ),
          );
        }
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new Error(`no ${pattern} on ${stream} within ${timeoutMs} ms:\n${this.stdout}\n${this.stderr}`)),
          ),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends a signal to the CLI process only. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Resolves with the result, or rejects if the process is still running after timeoutMs. */
  async exit(timeoutMs = 30_000): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the CLI did not exit within ${timeoutMs} ms:\n${this.stdout}\n${this.stderr}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL to the whole process group after graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined) return;
    if (this.running) {
      this.child.kill('SIGTERM');
      const ended = await Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs)),
      ]);
      if (!ended) killGroup(pid);
    }
    // Anything the CLI started that outlived it.
    killGroup(pid);
    await this.exited;
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

export function spawnCli(args: string[], opts: CliOptions): CliProcess {
  return new CliProcess(args, opts);
}

/**
 * `image-sync worker` as a process on a stack (its environment: server, task queue, ledger,
 * recording system), logging warnings and the lines it always prints; resolves once it polls.
 */
export async function spawnPollingWorker(
  stackEnv: Record<string, string>,
  extra: Record<string, string> = {},
): Promise<CliProcess> {
  const home = await tempDir('worker-home');
  const worker = spawnCli(['worker'], {
    env: cliEnv(home, { ...stackEnv, IMAGE_SYNC_LOG_LEVEL: 'WARN', ...extra }),
  });
  await worker.waitForStdout(/Worker polling/, 60_000);
  return worker;
}

/** Runs a CLI command to its end. */
export async function runCli(args: string[], opts: CliOptions & { timeoutMs?: number }): Promise<CliResult> {
  const proc = spawnCli(args, opts);
  try {
    return await proc.exit(opts.timeoutMs ?? 90_000);
  } finally {
    await proc.stop(1_000);
  }
}

/** Stops every CLI process still running. */
export async function stopAllClis(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Whether a process with this pid exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs another program (curl, the Temporal CLI) to its end. */
export function runProgram(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: opts.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The lines of a CLI's stderr that give the reason, without commander's "(add --help for usage)" hint. */
export function reasonLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && l.trim() !== '(add --help for usage)');
}
