/**
 * The Temporal floor for image-sync's shape (bench mode d): a parent that starts one child
 * workflow per file through a sliding window and waits for each child's completion; each child
 * runs one local activity doing the same send + verify as image-sync. No ledger, no signals, no
 * search attributes, no continue-as-new: what "one child workflow per file" costs at the least.
 */
import { condition, proxyLocalActivities, startChild } from '@temporalio/workflow';
import type { FloorActivities } from './floor';

/** The files, as the bench generates them: `<root>/<orderId>/<fileName>`, named compactly. */
export interface FloorInput {
  root: string;
  files: [orderId: string, fileName: string][];
  concurrency: number;
  prefix: string;
}

const { sendAndVerify } = proxyLocalActivities<FloorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 4 },
});

export async function floorFile(root: string, orderId: string, fileName: string, key: string): Promise<void> {
  await sendAndVerify({ orderId, fileName, sourcePath: `${root}/${orderId}/${fileName}` }, key);
}

export async function floorBatch(input: FloorInput): Promise<number> {
  const total = input.files.length;
  let next = 0;
  let inFlight = 0;
  let done = 0;
  while (done < total) {
    while (inFlight < input.concurrency && next < total) {
      const i = next++;
      const workflowId = `${input.prefix}/${i}`;
      inFlight += 1;
      const [orderId, fileName] = input.files[i]!;
      void startChild(floorFile, { workflowId, args: [input.root, orderId, fileName, workflowId] })
        .then((child) => child.result())
        .then(() => {
          inFlight -= 1;
          done += 1;
        });
    }
    await condition(() => (inFlight < input.concurrency && next < total) || done === total);
  }
  return done;
}
