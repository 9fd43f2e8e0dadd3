/** The source port: manifests, folders, source files and sample inputs. See design.md, "Inputs". */
export type { ManifestError, ParsedManifest } from './port';
export {
  checkSourceFiles,
  detectManifestFormat,
  formatManifestError,
  formatManifestErrors,
  MANIFEST_FIELDS,
  parseManifestText,
  readManifest,
  scanDirectory,
  SourceInputError,
} from './manifest';
export type { CheckSourceFilesOptions, ManifestField, ManifestFormat } from './manifest';
export { INDEX_STRIDE, pageIndexPath, readItemsPage, writeNormalizedManifest } from './normalized';
export { contentTypeFor, DEFAULT_CONTENT_TYPE, sha256File } from './files';
export type { FileDigest } from './files';
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
