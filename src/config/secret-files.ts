/**
 * Secrets from files, the container convention: every secret variable `NAME` (tokens, keys,
 * URLs that may hold a password) may instead be given as `NAME_FILE`, the path of a file that
 * holds the value (a Docker or Kubernetes secret mounted read-only). One trailing newline is
 * dropped. Setting both is refused, as is a file that cannot be read; the error names the
 * variable and the path, never the content.
 */
import { readFileSync } from 'node:fs';
import { errorText } from '../errors';

/** A `NAME_FILE` that cannot be used; the CLI exits 2 with its message. */
export class SecretFileError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretFileError';
  }
}

/** The file variant of a variable's name. */
export const fileVariable = (name: string): string => `${name}_FILE`;

/** The content of a secret file, without one trailing newline. */
export function readSecretFile(variable: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecretFileError(variable, `${variable}=${file} cannot be read: ${errorText(err)}`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value.trim() === '') throw new SecretFileError(variable, `${variable}=${file} is empty`);
  return value;
}

/**
 * The value of secret variable `name` in `env`: `env[name]`, or the content of the file
 * `env[name_FILE]` names; undefined when neither is set (blank counts as unset).
 */
export function secretFromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const direct = env[name]?.trim() ? env[name] : undefined;
  const file = env[fileVariable(name)]?.trim();
  if (direct !== undefined && file) {
    throw new SecretFileError(name, `${name} and ${fileVariable(name)} are both set: give one of them`);
  }
  return file ? readSecretFile(fileVariable(name), file) : direct;
}

/**
 * Reads every `NAME_FILE` of `names` that is set into `env[NAME]` (in place), so that every
 * reader of the environment, image-sync's and the SDK's (TEMPORAL_API_KEY), sees the value.
 * Returns the names read from files.
 */
export function resolveSecretFiles(env: NodeJS.ProcessEnv, names: readonly string[]): string[] {
  const read: string[] = [];
  for (const name of names) {
    if (!env[fileVariable(name)]?.trim()) continue;
    env[name] = secretFromEnv(env, name);
    delete env[fileVariable(name)];
    read.push(name);
  }
  return read;
}
