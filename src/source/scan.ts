/** Source folders laid out as `dir/<orderId>/<file>`, read as a manifest would be. See docs/manifests.md. */
import type { Dirent } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errorText } from '../errors';
import type { SyncItem } from '../shared';
import { orderedMap } from './concurrency';
import { contentTypeFor } from './files';
import { readFailure } from './input-errors';
import { nameProblem, quoteValue } from './names';
import { collectEntries, type ManifestEntry } from './manifest-record';
import type { ManifestError, ParsedManifest } from './port';

const SCAN_CONCURRENCY = 16;

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function entryKind(entry: Dirent): string {
  if (entry.isSymbolicLink()) return 'a symbolic link';
  if (entry.isFIFO()) return 'a named pipe';
  if (entry.isSocket()) return 'a socket';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'a device';
  return 'not a regular file';
}

async function readFolder(folder: string): Promise<Dirent[]> {
  const entries = await fs.readdir(folder, { withFileTypes: true });
  return entries.filter((entry) => !entry.name.startsWith('.')).sort((a, b) => byCodeUnits(a.name, b.name));
}

/**
 * Reads a folder laid out as `dir/<orderId>/<file>` as a stream: one level of order folders,
 * regular files inside them, a batch of entries per order folder (a few folders read ahead).
 * Names starting with '.' are skipped. Files directly in `dir`, folders inside order folders,
 * symbolic links and other non-regular entries, and names that fail the name rules are reported
 * with line 0, the relative path in the message, and not scanned further: those of `dir` itself
 * first, then each order folder's after its items. Items come sorted by orderId, then fileName
 * (by UTF-16 code units). Memory holds the order folders' names and one folder's entries at a
 * time, whatever the number of files. Rejects with a SourceInputError when `dir` cannot be read.
 */
export async function* scanDirectoryEntries(dir: string): AsyncGenerator<ManifestEntry[]> {
  const root = path.resolve(dir);
  let entries: Dirent[];
  try {
    entries = await readFolder(root);
  } catch (error) {
    throw readFailure(error, root, 'folder');
  }
  const errors: ManifestEntry[] = [];
  const error = (field: string, message: string) => errors.push({ line: 0, error: { line: 0, field, message } });
  const orderIds: string[] = [];
  for (const entry of entries) {
    const shown = quoteValue(entry.name, 120);
    if (entry.isDirectory()) {
      const problem = nameProblem(entry.name);
      if (problem === null) orderIds.push(entry.name);
      else error('orderId', `folder ${shown}: an order id ${problem}`);
    } else if (entry.isFile()) {
      error('path', `${shown}: a file directly in the folder is not read; put it in an <orderId>/ folder`);
    } else {
      error('path', `${shown}: ${entryKind(entry)}, not read`);
    }
  }
  entries = [];
  if (errors.length > 0) yield errors;
  for await (const order of orderedMap(orderIds, SCAN_CONCURRENCY, (orderId) => scanOrderFolder(root, orderId))) {
    const batch: ManifestEntry[] = order.items.map((item) => ({ line: 0, item }));
    for (const e of order.errors) batch.push({ line: 0, error: e });
    if (batch.length > 0) yield batch;
  }
}

/**
 * Reads a whole folder into memory (see scanDirectoryEntries): for small inputs and tests.
 * Errors of the folder itself come first, then those of each order folder.
 */
export async function scanDirectory(dir: string): Promise<ParsedManifest> {
  const parsed: ParsedManifest = { items: [], errors: [], lines: [] };
  for await (const batch of scanDirectoryEntries(dir)) collectEntries(batch, parsed);
  return parsed;
}

/** The files of one order folder, `root/<orderId>/`, and the entries it does not read. */
async function scanOrderFolder(root: string, orderId: string): Promise<ParsedManifest> {
  const items: SyncItem[] = [];
  const orderErrors: ManifestError[] = [];
  const orderFolder = path.join(root, orderId);
  let files: Dirent[];
  try {
    files = await readFolder(orderFolder);
  } catch (error) {
    const message = `${quoteValue(`${orderId}/`)}: cannot be read: ${errorText(error)}`;
    orderErrors.push({ line: 0, field: 'path', message });
    return { items, errors: orderErrors };
  }
  for (const file of files) {
    const shown = quoteValue(`${orderId}/${file.name}`, 120);
    if (file.isDirectory()) {
      orderErrors.push({
        line: 0,
        field: 'path',
        message: `${shown}: a folder inside an order folder is not read; files go directly in <orderId>/`,
      });
    } else if (!file.isFile()) {
      orderErrors.push({ line: 0, field: 'path', message: `${shown}: ${entryKind(file)}, not read` });
    } else {
      const problem = nameProblem(file.name);
      if (problem === null) {
        items.push({
          orderId,
          fileName: file.name,
          sourcePath: path.join(orderFolder, file.name),
          contentType: contentTypeFor(file.name),
        });
      } else {
        orderErrors.push({ line: 0, field: 'fileName', message: `${shown}: a file name ${problem}` });
      }
    }
  }
  return { items, errors: orderErrors };
}
