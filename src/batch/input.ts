/**
 * The input of a batch, read as a stream: a manifest (NDJSON, CSV) or a folder scan, each line
 * validated, its source file checked (bounded parallel `stat`) and its target checked, and each
 * valid item handed on as it goes, in line order. Memory does not grow with the input: duplicate
 * files are spotted in a temporary database on disk (source/spooled-files.ts), and of the errors
 * only the first MAX_LISTED_ERRORS are kept (the rest are counted).
 */
import { errorText } from '../errors';
import type { TargetNames } from '../config/target-names';
import type { SyncItem } from '../shared';
import { mapWithConcurrency } from '../source/concurrency';
import { checkSourceFile, sourceFileError } from '../source/files';
import { formatManifestErrors } from '../source/input-errors';
import { manifestEntries } from '../source/manifest';
import type { ManifestEntry } from '../source/manifest-record';
import type { ManifestError } from '../source/port';
import { scanDirectoryEntries } from '../source/scan';
import { SpooledFiles } from '../source/spooled-files';

/** Errors kept to be listed; more are counted only. */
export const MAX_LISTED_ERRORS = 10_000;
/** stat calls in flight at once. */
const STAT_CONCURRENCY = 64;
/** Entries checked together (their stat calls overlap). */
const CHECK_BATCH = 1000;

export class InputError extends Error {
  constructor(
    message: string,
    /** The errors listed (the first MAX_LISTED_ERRORS). */
    readonly errors: ManifestError[] = [],
    /** How many errors there were in all. */
    readonly errorCount = errors.length,
  ) {
    super(message);
    this.name = 'InputError';
  }
}

/** The errors as lines, and a last line for those not listed. */
export function formatInputErrors(errors: readonly ManifestError[], errorCount = errors.length): string {
  const more = errorCount - errors.length;
  return `${formatManifestErrors(errors)}${more > 0 ? `\n... and ${more} more, not listed` : ''}`;
}

/** Why an item's target (its own, or the default) is not among `targets`; null when it is. */
function targetProblem(item: SyncItem, targets: TargetNames): string | null {
  const name = item.target ?? targets.defaultTarget;
  if (targets.names.includes(name)) return null;
  const configured = targets.names.join(', ') || 'none';
  return item.target === undefined
    ? `the default target "${name}" is not configured (configured: ${configured}), order ${item.orderId}, file ${item.fileName}`
    : `unknown target "${name}" (configured: ${configured})`;
}

export interface InputSource {
  manifest?: string;
  dir?: string;
}

export interface ReadInputOptions {
  /** Skip invalid lines (and report them) instead of refusing the whole input. */
  skipInvalid?: boolean;
  /** When given, an item whose target is not configured is invalid too (field `target`). */
  targets?: TargetNames;
  /**
   * Where the files are spooled: duplicates are spotted there, and each file is recorded (with
   * its details when it was made so), skipped ones marked. A temporary one of its own when absent.
   */
  files?: SpooledFiles;
  /** An input without a valid item is not refused (a schedule's folder may hold no new file). */
  allowEmpty?: boolean;
}

/** A valid item, its manifest line (0 for a folder scan), its size and modification time at the time of the check. */
export interface CheckedItem {
  line: number;
  item: SyncItem;
  size: number;
  mtimeMs: number;
}

export interface InputSummary {
  /** Valid items handed on. */
  files: number;
  /** Lines skipped with skipInvalid (the first MAX_LISTED_ERRORS). */
  skipped: ManifestError[];
  skippedCount: number;
}

/** Keeps the first MAX_LISTED_ERRORS errors, counts all. */
class Errors {
  readonly listed: ManifestError[] = [];
  count = 0;

  add(error: ManifestError): void {
    this.count += 1;
    if (this.listed.length < MAX_LISTED_ERRORS) this.listed.push(error);
  }
}

/**
 * Reads a manifest or a folder as a stream and calls `onItem` for each valid item, in line order,
 * awaiting it (so a slow writer slows the reading, and nothing piles up). Any invalid line
 * refuses the whole input with an InputError naming the lines (once one is found, `onItem` is no
 * longer called: the caller drops what it has), unless skipInvalid is set; an input without a
 * valid item is refused too.
 */
export async function readInput(
  src: InputSource,
  opts: ReadInputOptions,
  onItem: (checked: CheckedItem) => void | Promise<void>,
): Promise<InputSummary> {
  if (!src.manifest === !src.dir) throw new InputError('give exactly one of --manifest FILE or --dir DIR');
  const own = opts.files ? null : new SpooledFiles();
  const files = opts.files ?? own!;
  const errors = new Errors();
  let valid = 0;

  const check = async (batch: ManifestEntry[]): Promise<void> => {
    const found = batch.filter((e): e is ManifestEntry & { item: SyncItem } => e.item !== undefined);
    const checks = await mapWithConcurrency(found, STAT_CONCURRENCY, (e) => checkSourceFile(e.item.sourcePath));
    let next = 0;
    for (const entry of batch) {
      if (entry.error) {
        errors.add(entry.error);
        continue;
      }
      const { item, line } = entry;
      // A folder holds no duplicates; its files are recorded for what follows (a dry run's matching).
      if (src.dir !== undefined && opts.files) files.firstLineOf(item, line);
      const checked = checks[next++]!;
      const target = opts.targets ? targetProblem(item, opts.targets) : null;
      if (checked.problem !== null || target !== null) {
        if (checked.problem !== null) errors.add(sourceFileError(line, item, checked.problem));
        if (target !== null) errors.add({ line, field: 'target', message: target });
        if (opts.files) files.skip(item);
        continue;
      }
      valid += 1;
      if (opts.skipInvalid || errors.count === 0)
        await onItem({ line, item, size: checked.size, mtimeMs: checked.mtimeMs });
    }
  };

  const entries = src.manifest ? manifestEntries(src.manifest, { seen: files }) : scanDirectoryEntries(src.dir!);
  try {
    const nextBatch = async (): Promise<ManifestEntry[] | null> => {
      try {
        const next = await entries.next();
        return next.done ? null : next.value;
      } catch (err) {
        // The manifest or folder cannot be read at all (SourceInputError).
        throw new InputError(errorText(err));
      }
    };
    let pending: ManifestEntry[] = [];
    for (let batch = await nextBatch(); batch !== null; batch = await nextBatch()) {
      for (const entry of batch) pending.push(entry);
      if (pending.length >= CHECK_BATCH) {
        await check(pending);
        pending = [];
      }
    }
    await check(pending);
  } finally {
    await entries.return(undefined).catch(() => undefined);
    own?.close();
  }

  if (errors.count > 0 && !opts.skipInvalid) {
    throw new InputError(
      `${errors.count} invalid ${errors.count === 1 ? 'entry' : 'entries'}; nothing was started (use --skip-invalid to skip them):\n${formatInputErrors(errors.listed, errors.count)}`,
      errors.listed,
      errors.count,
    );
  }
  if (valid === 0 && !opts.allowEmpty) throw new InputError('the input holds no file to send');
  return { files: valid, skipped: errors.listed, skippedCount: errors.count };
}

export interface LoadedInput {
  items: SyncItem[];
  /** Lines skipped with --skip-invalid. */
  skipped: ManifestError[];
}

/**
 * Reads a manifest or a folder into memory (see readInput): for small inputs (the demo, tests).
 * Any invalid line stops the batch unless skipInvalid is set.
 */
export async function loadInput(
  src: InputSource,
  skipInvalid = false,
  opts: { targets?: TargetNames } = {},
): Promise<LoadedInput> {
  const items: SyncItem[] = [];
  const { skipped } = await readInput(src, { skipInvalid, targets: opts.targets }, (c) => {
    items.push(c.item);
  });
  return { items, skipped };
}
