/** Reading the inputs of a batch: manifests (NDJSON, CSV) and folders. See docs/manifests.md. */
import type { SyncItem } from '../shared';

export interface ManifestError {
  /**
   * 1-based line number in the manifest (the header is line 1 of a CSV); 0 when the error has
   * no line, as for entries found by a directory scan.
   */
  line: number;
  /** The field at fault, or '' for the line as a whole. */
  field: string;
  message: string;
}

export interface ParsedManifest {
  items: SyncItem[];
  errors: ManifestError[];
  /**
   * Where each item came from: `lines[i]` is the 1-based manifest line of `items[i]` (the first
   * line of a CSV record), 0 for items found by a directory scan. Pass it to `checkSourceFiles`
   * so its errors name the manifest line.
   */
  lines?: number[];
}
