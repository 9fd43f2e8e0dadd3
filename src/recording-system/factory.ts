/**
 * The adapter factory: one recording system per configured target, by the target's kind.
 */
import type { TargetConfig } from '../config/target-kinds';
import { HttpRecordingSystem } from './http-adapter';
import type { RecordingSystem } from './port';
import { S3RecordingSystem } from './s3-adapter';
import { SftpRecordingSystem } from './sftp-adapter';
import { WebDavRecordingSystem } from './webdav-adapter';

export function createRecordingSystem(target: TargetConfig): RecordingSystem {
  switch (target.kind) {
    case 'http':
      return new HttpRecordingSystem({
        baseUrl: target.url,
        token: target.token,
        requestTimeoutMs: target.requestTimeoutMs,
        ...(target.tls ? { tls: target.tls } : {}),
      });
    case 's3':
      return new S3RecordingSystem(target);
    case 'sftp':
      return new SftpRecordingSystem(target);
    case 'webdav':
      return new WebDavRecordingSystem(target);
  }
}
