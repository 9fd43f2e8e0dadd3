/** A namespace ready for image-sync on a freshly started Temporal server. */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { loadSearchAttributes, type SearchAttributeTypeName } from './search-attributes';

const INDEXED_TYPES: Record<SearchAttributeTypeName, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Text: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

const GRPC_ALREADY_EXISTS = 6;

function grpcCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/**
 * Creates the namespace when missing and registers the search attributes; an attribute that
 * already exists with the same type counts as done, another type is an error.
 */
export async function prepareNamespace(
  address: string,
  namespace: string,
  retentionDays: number,
  timeoutMs = 60_000,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
        description: 'image-sync',
      });
    } catch (err) {
      if (grpcCode(err) !== GRPC_ALREADY_EXISTS) throw err;
    }
    const wanted = loadSearchAttributes();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const existing = await connection.operatorService.listSearchAttributes({ namespace });
        const custom = existing.customAttributes ?? {};
        const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
        for (const [key, type] of Object.entries(wanted)) {
          const have = custom[key];
          if (have === undefined) missing[key] = INDEXED_TYPES[type];
          else if (have !== INDEXED_TYPES[type]) {
            throw Object.assign(
              new Error(`search attribute ${key} exists on namespace ${namespace} with another type than ${type}`),
              { fatal: true },
            );
          }
        }
        if (Object.keys(missing).length === 0) break;
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
      } catch (err) {
        // The namespace takes a moment to reach every service's cache after its creation.
        if ((err as { fatal?: boolean }).fatal || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    // Usable from the frontend: a visibility query in the namespace answers.
    for (;;) {
      try {
        await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
}
