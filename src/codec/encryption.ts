/**
 * AES-256-GCM payload encryption for everything image-sync sends through Temporal: workflow and
 * activity inputs and results, signals, queries, updates, memos, summaries, heartbeat details and
 * (with encodeCommonAttributes) failure messages and stack traces. Search attributes and
 * workflow ids are not payloads the codec sees: the server indexes them, so they stay readable.
 *
 * An encrypted payload carries the id of the key that encrypted it, so keys rotate: the first
 * key encrypts, every listed key decrypts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  METADATA_ENCODING_KEY,
  ValueError,
  type DataConverter,
  type Payload,
  type PayloadCodec,
} from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { EncryptionKey } from '../config/production-env';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: EncryptionKey;

  constructor(keys: readonly EncryptionKey[]) {
    if (keys.length === 0) throw new Error('the encryption codec needs at least one key');
    this.current = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads.map((payload) => this.encrypt(payload)));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads.map((payload) => this.decrypt(payload)));
  }

  private encrypt(payload: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    // The key id is authenticated with the data: a payload cannot be moved to another key's name.
    cipher.setAAD(Buffer.from(this.current.id));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.current.id) },
      data: Buffer.concat([iv, body, cipher.getAuthTag()]),
    };
  }

  private decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]) ?? '';
    const key = this.byId.get(keyId);
    if (!key)
      throw new ValueError(`payload encrypted with key "${keyId}", which IMAGE_SYNC_ENCRYPTION_KEYS does not list`);
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new ValueError('encrypted payload is too short');
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new ValueError(`encrypted payload does not authenticate under key "${keyId}"`);
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}

/** The module of the failure converter (./failure-converter), as .ts under tsx and .js in the build. */
export const FAILURE_CONVERTER_PATH = path.join(__dirname, `failure-converter${path.extname(__filename)}`);

/**
 * The data converter of every client and worker: failure messages and stacks as payloads, and
 * encryption of every payload when keys are given.
 */
export function imageSyncDataConverter(keys: readonly EncryptionKey[] | undefined): DataConverter {
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...(keys?.length ? { payloadCodecs: [new EncryptionCodec(keys)] } : {}),
  };
}
