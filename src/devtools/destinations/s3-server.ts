/**
 * A local S3-compatible server: versitygw over a folder (objects are plain files with extended
 * attributes), on a free loopback port, with one bucket. It can be stopped and started again on
 * the same port and folder (an outage).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ensureVersitygw } from './install';
import { freePort, startServerProcess, type ServerProcess } from './process';

export interface RunningS3Server {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where versitygw keeps the bucket's objects (`<dataDir>/<bucket>/<key>`). */
  dataDir: string;
  /** The server's main process while it runs (its sessions are its descendants). */
  pid(): number | null;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startS3Server(opts: { dir: string; bucket?: string }): Promise<RunningS3Server> {
  const binary = await ensureVersitygw();
  const port = await freePort();
  const dataDir = path.join(opts.dir, 's3-data');
  mkdirSync(dataDir, { recursive: true });
  const accessKeyId = `img${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(18).toString('base64url');
  const env = { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey };
  let proc: ServerProcess | null = null;
  const pid = () => proc?.child.pid ?? null;
  const start = async () => {
    proc = await startServerProcess('versitygw', binary, ['--port', `127.0.0.1:${port}`, '--quiet', 'posix', dataDir], {
      port,
      env,
    });
  };
  const stop = async () => {
    await proc?.stop();
    proc = null;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  const bucket = opts.bucket ?? 'image-sync';
  const region = 'us-east-1';
  const admin = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    admin.destroy();
  }
  return { endpoint, bucket, region, accessKeyId, secretAccessKey, dataDir, pid, start, stop, close: stop };
}
