/** The source port: manifests, folders, source files and sample inputs. See design.md, "Inputs". */
export type { ManifestError, ParsedManifest } from './port';
export { detectManifestFormat, parseManifestText, readManifest } from './manifest';
export type { ManifestFormat } from './manifest';
export { MANIFEST_FIELDS } from './manifest-record';
export type { ManifestField } from './manifest-record';
export { scanDirectory } from './scan';
export { formatManifestError, formatManifestErrors, SourceInputError } from './input-errors';
export { INDEX_STRIDE, pageIndexPath, readItemsPage, writeNormalizedManifest } from './normalized';
export { checkSourceFiles, contentTypeFor, DEFAULT_CONTENT_TYPE, sha256File } from './files';
export type { CheckSourceFilesOptions, FileDigest } from './files';
export { MAX_NAME_BYTES, nameProblem, resolveSourcePath } from './names';
export type { ResolvedSourcePath } from './names';
export {
  crc32,
  DEMO_SAMPLE,
  generateBlobFiles,
  generateSampleBatch,
  sampleFileName,
  sampleOrderId,
} from './sample-images';
export type { BlobFilesOptions, GeneratedFiles, SampleBatchOptions } from './sample-images';
