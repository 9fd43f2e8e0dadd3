/**
 * The payload keys of the test stacks, as IMAGE_SYNC_ENCRYPTION_KEYS would give them: every
 * workflow test runs with encrypted payloads, as production does, and the run's codec server
 * (test/global-setup.ts) decodes them for the Temporal CLI; the browser tests run their own
 * (test/helpers/web-ui.ts).
 */
import { parseEncryptionKeys, type EncryptionKey } from '../../src/config/production-env';

export const TEST_ENCRYPTION_KEYS_ENV = [
  `test-2:${Buffer.alloc(32, 7).toString('base64')}`,
  `test-1:${Buffer.alloc(32, 3).toString('base64')}`,
].join(',');

export function testEncryptionKeys(raw = TEST_ENCRYPTION_KEYS_ENV): EncryptionKey[] {
  const parsed = parseEncryptionKeys(raw);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.keys;
}

/** The bearer token the run's codec server accepts (test/global-setup.ts). */
export const TEST_CODEC_TOKEN = 'test-codec-token-7d1c0b5e';
