/**
 * `GET /v1/openapi.json`: the intake API described in OpenAPI 3.1, its schemas generated from the
 * zod schemas the server validates with (zod's `z.toJSONSchema`, JSON Schema 2020-12, which
 * OpenAPI 3.1 takes as is).
 */
import { z } from 'zod';
import {
  acceptedSchema,
  DEFAULT_MAX_BODY_BYTES,
  errorSchema,
  healthSchema,
  IDEMPOTENCY_KEY,
  IDEMPOTENCY_KEY_RULE,
  MAX_FILES_PER_SUBMISSION,
  orderIdSchema,
  orderStatusSchema,
  submissionBodySchema,
  fileStatusSchema,
} from './schema';

/** A schema as OpenAPI embeds it (the `$schema` line belongs to a standalone document). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const error = (description: string) => ({ description, content: json('Error') });

export function openApiDocument(opts: { version: string; maxBodyBytes?: number }): Record<string, unknown> {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const orderId = {
    name: 'orderId',
    in: 'path',
    required: true,
    schema: jsonSchemaOf(orderIdSchema, 'input'),
  };
  const common401 = error('no valid bearer token: nothing was read or changed');
  return {
    openapi: '3.1.0',
    info: {
      title: 'image-sync intake API',
      version: opts.version,
      description:
        'The business platform submits the image files of an order, by reference, as they appear; image-sync delivers each to its recording system once, verifies it, and keeps the ledger. See docs/intake-api.md.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/orders/{orderId}/files': {
        post: {
          operationId: 'submitFiles',
          summary: 'submit files of an order for delivery',
          parameters: [
            orderId,
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: true,
              description: `the caller's key for this submission (${IDEMPOTENCY_KEY_RULE}): a retry with the same key and body delivers nothing new`,
              schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source },
            },
          ],
          requestBody: {
            required: true,
            description: `at most ${maxBody} bytes and ${MAX_FILES_PER_SUBMISSION} files`,
            content: { 'application/json': { schema: ref('SubmissionBody') } },
          },
          responses: {
            '202': { description: 'durable in Temporal: every file will be delivered once', content: json('Accepted') },
            '400': error('a field is refused (named in error.field); nothing was started'),
            '401': common401,
            '409': error('the same key is still being taken by another request: retry later with the same key'),
            '413': error(`the body is larger than ${maxBody} bytes`),
            '415': error('the body is not application/json'),
            '422': error('this key was taken before with a different body'),
            '429': {
              ...error('image-sync is saturated: retry after Retry-After seconds with the same key'),
              headers: { 'Retry-After': { schema: { type: 'integer' } } },
            },
            '503': error(
              'Temporal or the ledger cannot be reached, or the server is stopping: retry with the same key',
            ),
          },
        },
      },
      '/v1/orders/{orderId}': {
        get: {
          operationId: 'orderStatus',
          summary: "each submitted file's state, from the ledger",
          parameters: [orderId],
          responses: {
            '200': { description: 'the files of the order submitted through the intake', content: json('OrderStatus') },
            '400': error('the order id is refused'),
            '401': common401,
            '404': error('no file of this order was submitted through the intake'),
            '503': error('the ledger or Temporal cannot be reached'),
          },
        },
      },
      '/v1/orders/{orderId}/files/{fileName}': {
        get: {
          operationId: 'fileStatus',
          summary: "one submitted file's state",
          parameters: [
            orderId,
            { name: 'fileName', in: 'path', required: true, schema: { type: 'string', minLength: 1 } },
          ],
          responses: {
            '200': { description: "the file's state", content: json('FileStatus') },
            '401': common401,
            '404': error('no such file of this order was submitted through the intake'),
            '503': error('the ledger or Temporal cannot be reached'),
          },
        },
      },
      '/v1/openapi.json': {
        get: {
          operationId: 'openApi',
          summary: 'this document',
          responses: { '200': { description: 'OpenAPI 3.1' }, '401': common401 },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'readiness: 200 while Temporal and the ledger answer, 503 otherwise (no credential needed)',
          security: [],
          responses: {
            '200': { description: 'ready', content: json('Health') },
            '503': { description: 'not ready', content: json('Health') },
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        SubmissionBody: jsonSchemaOf(submissionBodySchema, 'input'),
        Accepted: jsonSchemaOf(acceptedSchema),
        OrderStatus: jsonSchemaOf(orderStatusSchema),
        FileStatus: jsonSchemaOf(fileStatusSchema),
        Error: jsonSchemaOf(errorSchema),
        Health: jsonSchemaOf(healthSchema),
      },
    },
  };
}
