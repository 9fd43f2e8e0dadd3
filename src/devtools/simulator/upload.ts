/** Upload bodies: streamed to disk and hashed on the way, never held whole in memory. */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type http from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ReceivedBody {
  /** sha256 and size of the bytes the client sent. */
  sha256: string;
  size: number;
  /** sha256 and size of the bytes written to disk (they differ only when corrupting). */
  keptSha256: string;
  keptSize: number;
}

/**
 * Streams a request body to `target`, hashing what arrives and what is written. With `corrupt`
 * the first byte written is inverted (an empty body is written as one zero byte).
 */
export async function receiveBody(req: http.IncomingMessage, target: string, corrupt: boolean): Promise<ReceivedBody> {
  const received = createHash('sha256');
  const kept = createHash('sha256');
  let size = 0;
  let keptSize = 0;
  let altered = !corrupt;
  const keep = (chunk: Buffer): Buffer => {
    kept.update(chunk);
    keptSize += chunk.length;
    return chunk;
  };
  const meter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      received.update(chunk);
      size += chunk.length;
      if (altered || chunk.length === 0) return done(null, keep(chunk));
      altered = true;
      const copy = Buffer.from(chunk);
      copy.writeUInt8(copy.readUInt8(0) ^ 0xff, 0);
      done(null, keep(copy));
    },
    flush(done: TransformCallback) {
      if (altered) return done();
      altered = true;
      done(null, keep(Buffer.of(0)));
    },
  });
  await pipeline(req, meter, createWriteStream(target, { flags: 'wx' }));
  return { sha256: received.digest('hex'), size, keptSha256: kept.digest('hex'), keptSize };
}
