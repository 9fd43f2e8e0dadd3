/**
 * The failure converter of image-sync's workers, clients and workflow bundle: failure messages
 * and stack traces travel as an encoded payload, so with IMAGE_SYNC_ENCRYPTION_KEYS set the
 * codec encrypts them (they name files and paths). Loaded by path (the workflow sandbox needs
 * it in the bundle), hence a module of its own.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
