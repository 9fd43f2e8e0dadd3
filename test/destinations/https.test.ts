/**
 * The http kind over TLS with client certificates: the simulator behind an HTTPS front that
 * requires a certificate signed by a CA the test makes; every core behaviour, plus the
 * handshakes that must fail.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTestPki } from '../../src/devtools/destinations/pki';
import { startTlsFront } from '../../src/devtools/destinations/tls-front';
import { HttpRecordingSystem } from '../../src/recording-system/http-adapter';
import { TEST_TOKEN } from '../helpers/harness';
import { describeDestination } from './behaviours';

async function tlsRig() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-sync-mtls-'));
  const pki = makeTestPki(path.join(dir, 'pki'));
  const front = await startTlsFront({ dir: path.join(dir, 'data'), token: TEST_TOKEN, pki });
  return {
    pki,
    front,
    system: (ns: string) =>
      new HttpRecordingSystem({
        baseUrl: `${front.url}/${ns}`,
        token: TEST_TOKEN,
        requestTimeoutMs: 2_000,
        tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
      }),
    stop: () => front.stop(),
    start: () => front.start(),
    close: () => front.close(),
  };
}

describeDestination('http (mutual TLS)', tlsRig);

describe('http targets over TLS', () => {
  it('refuses a handshake without the client certificate, or with a server the CA did not sign', async () => {
    const rig = await tlsRig();
    try {
      const ok = rig.system('handshake');
      expect(await ok.stat('o', 'f.png')).toBeNull();
      await ok.close?.();
      const anonymous = new HttpRecordingSystem({
        baseUrl: `${rig.front.url}/handshake`,
        token: TEST_TOKEN,
        tls: { ca: rig.pki.ca },
      });
      const noCert = await anonymous.stat('o', 'f.png').catch((e: unknown) => e);
      // Under TLS 1.3 the server's refusal reaches the client as a closed connection.
      expect(noCert).toMatchObject({ kind: 'network' });
      expect(String((noCert as Error).message)).not.toContain(TEST_TOKEN);
      await anonymous.close();
      const trusting = new HttpRecordingSystem({
        baseUrl: `${rig.front.url}/handshake`,
        token: TEST_TOKEN,
        tls: { cert: rig.pki.clientCert, key: rig.pki.clientKey },
      });
      await expect(trusting.stat('o', 'f.png')).rejects.toMatchObject({
        kind: 'unauthorized',
        message: expect.stringMatching(/TLS/),
      });
      await trusting.close();
    } finally {
      await rig.close();
    }
  });
});
