/**
 * Loaded into a CLI process by a test (NODE_OPTIONS=--import <this file>): while the file named
 * by IMAGE_SYNC_TEST_FSYNC_FAILS_WHILE exists, every fsync of a file handle in the process fails
 * as a disk that cannot write fails it (EIO). The fault is at the operating system's door; the
 * process under test is otherwise the real one.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';

const marker = process.env.IMAGE_SYNC_TEST_FSYNC_FAILS_WHILE;
if (marker) {
  const probe = await open(process.execPath, 'r');
  const fileHandle = Object.getPrototypeOf(probe);
  await probe.close();
  const sync = fileHandle.sync;
  fileHandle.sync = function failingSync() {
    if (!existsSync(marker)) return sync.call(this);
    return Promise.reject(
      Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync', errno: -5 }),
    );
  };
}
