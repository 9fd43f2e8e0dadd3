/**
 * The names of the configured recording-system targets, without their tokens: what `start`
 * needs to refuse an unknown `target` before anything runs. Tokens are the worker's business;
 * the CLI that starts a batch may not hold them.
 *
 * Without IMAGE_SYNC_TARGETS_FILE there is one target, `default`. With it, the names are the
 * keys of its `targets` object (see targets.ts for the file's shape). A file that cannot be
 * read or parsed here yields the reason instead, and the worker's own check stays the guard.
 */
import { readFileSync } from 'node:fs';
import { errorText } from '../errors';
import { DEFAULT_TARGET } from './targets';

export interface TargetNames {
  defaultTarget: string;
  names: string[];
}

export function targetNamesFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): { ok: true; targets: TargetNames } | { ok: false; reason: string } {
  const file = env.IMAGE_SYNC_TARGETS_FILE;
  if (!file) return { ok: true, targets: { defaultTarget: DEFAULT_TARGET, names: [DEFAULT_TARGET] } };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { ok: false, reason: `IMAGE_SYNC_TARGETS_FILE ${file}: ${errorText(err)}` };
  }
  const doc = raw as { defaultTarget?: unknown; targets?: unknown } | null;
  const targets = doc?.targets;
  if (typeof doc?.defaultTarget !== 'string' || typeof targets !== 'object' || targets === null) {
    return { ok: false, reason: `IMAGE_SYNC_TARGETS_FILE ${file}: needs "defaultTarget" and "targets"` };
  }
  return { ok: true, targets: { defaultTarget: doc.defaultTarget, names: Object.keys(targets) } };
}
