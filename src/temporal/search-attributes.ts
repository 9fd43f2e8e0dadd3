/** The search attributes every image-sync Temporal server registers (temporal-config/search-attributes.json). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './cli-binary';

export type SearchAttributeTypeName = 'Keyword' | 'Int' | 'Text' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export const SEARCH_ATTRIBUTES_FILE = path.join(PROJECT_ROOT, 'temporal-config', 'search-attributes.json');

export function loadSearchAttributes(file = SEARCH_ATTRIBUTES_FILE): Record<string, SearchAttributeTypeName> {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as {
    searchAttributes?: Record<string, SearchAttributeTypeName>;
  };
  if (!parsed.searchAttributes || Object.keys(parsed.searchAttributes).length === 0) {
    throw new Error(`${file} lists no searchAttributes`);
  }
  return parsed.searchAttributes;
}
