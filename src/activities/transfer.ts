/**
 * Transfer activities: stream a file to its recording system and verify the send by the preset
 * rules, writing each step to the ledger.
 *
 * `deliverFile` is the whole happy path of a file as one local activity: it opens the
 * interaction, sends and verifies, so a small file completes in one workflow task. A file over
 * the batch's local-send limit is sent by `sendFile`, a regular activity that heartbeats, and
 * verified by `verifyFile`.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { errorText } from '../errors';
import { FailureType } from '../failures';
import { ledgerPacer } from '../limits/pacer';
import type { InteractionPatch, StepEvent } from '../ledger/port';
import { RecordingSystemError, type Receipt, type RecordingSystem } from '../recording-system/port';
import { contentTypeFor, sha256File } from '../source/files';
import { claimFile, claimOf, copyToReplace, deliverIfHeld, removeOwnCopy, type BusyWith } from './claims';
import {
  mapped,
  openInteraction,
  systemFor,
  timed,
  verifyFailure,
  withHeartbeat,
  writerOf,
  type ActivityDeps,
  type Digest,
  type FileRef,
} from './context';

/** Read errors that say the source path names no file: nothing there, a folder, a file taken for a folder. */
const NOT_A_FILE = new Set(['ENOENT', 'EISDIR', 'ENOTDIR']);

export type VerifyRule = 'missing' | 'size' | 'checksum' | 'idempotency-key';
export type Verdict = { ok: true } | { ok: false; rule: VerifyRule; detail: string };

/** The preset verification rules, in order: missing, size, checksum, idempotency key. */
export function judge(
  receipt: Receipt | null,
  expected: { sha256: string; size: number; interactionId: string },
): Verdict {
  if (!receipt) return { ok: false, rule: 'missing', detail: 'the recording system holds no such file' };
  if (receipt.size !== expected.size) {
    return { ok: false, rule: 'size', detail: `holds ${receipt.size} bytes, sent ${expected.size}` };
  }
  if (receipt.sha256 !== expected.sha256) {
    return { ok: false, rule: 'checksum', detail: `holds sha256 ${receipt.sha256}, sent ${expected.sha256}` };
  }
  if (receipt.idempotencyKey !== expected.interactionId) {
    return { ok: false, rule: 'idempotency-key', detail: `held under key ${receipt.idempotencyKey}` };
  }
  return { ok: true };
}

export type { Digest } from './context';

/**
 * What deliverFile did: sent and judged the file; left a large one to sendFile; found the file
 * claimed by a live interaction of another (nothing sent: look again later); or found its bytes
 * already held as another interaction recorded them (RECORDED, nothing sent).
 */
export type Delivery =
  | { kind: 'large'; size: number }
  | ({ kind: 'sent'; verdict: Verdict } & Digest)
  | { kind: 'busy'; holder: BusyWith }
  | { kind: 'held'; heldBy: string; batchId: string };

export function createTransferActivities(deps: ActivityDeps) {
  const { ledger, targets } = deps;
  const heartbeatEveryMs = deps.heartbeatEveryMs ?? 2_000;
  const pacer = deps.pacer ?? ledgerPacer(ledger);

  /** Waits for a request's share of the batch's limits, when the file is paced. */
  async function paceRequest(ref: FileRef & { paced?: boolean }, signal: AbortSignal): Promise<void> {
    if (ref.paced) await pacer.request(ref.batchId, targets.resolveName(ref.item.target), signal);
  }

  /**
   * The source file's digest, checked against the manifest's sha256 when one was given. A path
   * that names no file (nothing there, a folder) is told by the read itself: one file-system
   * round trip a file fewer than a look before it.
   */
  async function readSource(ref: FileRef, signal: AbortSignal): Promise<Digest> {
    const { item } = ref;
    const digest = await sha256File(item.sourcePath, signal).catch((err: unknown) => {
      if (NOT_A_FILE.has((err as NodeJS.ErrnoException).code ?? '')) {
        throw ApplicationFailure.nonRetryable(`source file ${item.sourcePath} is missing`, FailureType.SourceMissing);
      }
      throw err;
    });
    if (item.sha256 && item.sha256 !== digest.sha256) {
      throw ApplicationFailure.nonRetryable(
        `source ${item.sourcePath} has sha256 ${digest.sha256}, the manifest says ${item.sha256}`,
        FailureType.SourceChecksumMismatch,
      );
    }
    return digest;
  }

  const open = (ref: FileRef & { attempt: number }, digest?: Digest) => openInteraction(deps, ref, digest);

  /** Opens the interaction with its OPENED event and claims its file, in one ledger transaction. */
  async function openClaimed(ref: FileRef & { attempt: number }, target: string, digest: Digest): Promise<boolean> {
    const { item } = ref;
    const { firstClaim } = await ledger.openClaimed(
      {
        interactionId: ref.interactionId,
        batchId: ref.batchId,
        orderId: item.orderId,
        fileName: item.fileName,
        target,
        sourcePath: item.sourcePath,
        sha256: digest.sha256,
        sizeBytes: digest.size,
        status: 'SENDING',
      },
      claimOf(ref, target),
      { redrive: ref.attempt },
    );
    return firstClaim;
  }

  /**
   * PUTs the file and returns its SENT event, for the caller to write with its next step (the
   * verdict, or the status that waits for it): one commit a file fewer. A failed send is
   * recorded here (SEND_FAILED and the error, in one step). A 409 over a copy of this file's own
   * (a corrupted earlier send) is replaced, never a foreign one. With `resendRecorded`, a copy of
   * the same bytes another interaction recorded is replaced by this interaction's, in one
   * conditional PUT.
   */
  async function put(
    system: RecordingSystem,
    ref: FileRef & { resend: number; paced?: boolean; resendRecorded?: boolean },
    digest: Digest,
    signal: AbortSignal,
  ): Promise<StepEvent> {
    const { item, interactionId } = ref;
    const replacing = ref.resendRecorded ? await copyToReplace(ledger, system, ref, digest, signal) : undefined;
    const attempt = Context.current().info.attempt;
    const target = targets.resolveName(item.target);
    const once = async () => {
      await paceRequest(ref, signal);
      const pace = ref.paced ? await pacer.upload(ref.batchId, target, digest.size, signal) : undefined;
      return system.put({
        orderId: item.orderId,
        fileName: item.fileName,
        sourcePath: item.sourcePath,
        sha256: digest.sha256,
        size: digest.size,
        contentType: item.contentType ?? contentTypeFor(item.fileName),
        idempotencyKey: interactionId,
        ...(replacing !== undefined ? { replacing } : {}),
        signal,
        pace,
      });
    };
    try {
      let result;
      try {
        result = await once();
      } catch (err) {
        if (!(err instanceof RecordingSystemError && err.kind === 'conflict') || replacing !== undefined) throw err;
        if ((await removeOwnCopy(ledger, system, { ...ref, target }, signal)) !== 'gone') throw err;
        result = await once();
      }
      return {
        eventKey: `SENT:${ref.resend}`,
        kind: 'SENT',
        detail: {
          resend: ref.resend,
          attempt,
          httpStatus: result.httpStatus,
          outcome: result.outcome,
          size: digest.size,
          ...(replacing !== undefined ? { replaced: replacing } : {}),
        },
        at: new Date().toISOString(),
      };
    } catch (err) {
      if (signal.aborted) throw err;
      await ledger.recordStep(
        interactionId,
        [
          {
            eventKey: `SEND_FAILED:${ref.resend}:${attempt}`,
            kind: 'SEND_FAILED',
            detail: { resend: ref.resend, attempt, error: errorText(err) },
          },
        ],
        { lastError: errorText(err) },
      );
      throw err;
    }
  }

  /**
   * Reads the receipt, applies the preset rules and records the verdict (RECORDED when all pass),
   * with the `sent` event of the send it judges, when that is not written yet. When no verdict
   * can be reached (the receipt cannot be read), the send is recorded alone.
   */
  async function verify(
    system: RecordingSystem,
    ref: FileRef & { resend: number; paced?: boolean; resendRecorded?: boolean },
    digest: Digest,
    signal: AbortSignal,
    sent?: StepEvent,
  ): Promise<Verdict> {
    const { item, interactionId, resend } = ref;
    const pending = sent ? [sent] : [];
    let verdict: Verdict;
    let heldBy: string | undefined;
    try {
      await paceRequest(ref, signal);
      const receipt = await system.stat(item.orderId, item.fileName, { signal });
      verdict = judge(receipt, { ...digest, interactionId });
      if (
        !verdict.ok &&
        verdict.rule === 'idempotency-key' &&
        // Sent to hold a copy of its own: another interaction's copy does not deliver it.
        !(ref.resendRecorded && system.replacesHeldCopy) &&
        (await writerOf(ledger, receipt!, item, interactionId)) === 'sibling'
      ) {
        // The same bytes, recorded by an earlier interaction for this file (an earlier batch):
        // the file is delivered. That interaction keeps its record.
        heldBy = receipt!.idempotencyKey;
        verdict = { ok: true };
      }
    } catch (err) {
      if (pending.length > 0) await ledger.recordStep(interactionId, pending);
      throw err;
    }
    const [event, patch]: [StepEvent, InteractionPatch] = verdict.ok
      ? [
          { eventKey: `VERIFIED:${resend}`, kind: 'VERIFIED', detail: heldBy ? { resend, heldBy } : { resend } },
          { status: 'RECORDED', lastError: null },
        ]
      : [
          {
            eventKey: `VERIFY_FAILED:${resend}`,
            kind: 'VERIFY_FAILED',
            detail: { resend, rule: verdict.rule, detail: verdict.detail },
          },
          { lastError: `${verdict.rule}: ${verdict.detail}` },
        ];
    await ledger.recordStep(interactionId, [...pending, event], patch);
    return verdict;
  }

  return {
    /**
     * The happy path of one file, as a local activity: opens the interaction (first call),
     * reads the source, claims the file at its target, and when it is at most
     * `localSendMaxBytes`, sends and verifies it. A larger file is left to sendFile and
     * verifyFile. A file claimed by another live interaction is not sent ('busy'); one whose
     * bytes the target already holds is not sent again ('held') unless `resendRecorded`.
     */
    async deliverFile(
      args: FileRef & {
        attempt: number;
        resend: number;
        open: boolean;
        localSendMaxBytes: number;
        resendRecorded?: boolean;
      },
    ): Promise<Delivery> {
      const signal = Context.current().cancellationSignal;
      return mapped(async () => {
        const system = systemFor(targets, args.item.target);
        let digest: Digest;
        try {
          digest = await readSource(args, signal);
        } catch (err) {
          // The interaction is opened even for a source that cannot be read: the ledger shows why.
          if (args.open) await open(args);
          throw err;
        }
        const target = targets.resolveName(args.item.target);
        // The first look opens the interaction and claims the file in one ledger transaction. A
        // first claim of the file needs no already-held look: no interaction ever recorded it.
        let firstClaim = false;
        if (args.open) firstClaim = await openClaimed(args, target, digest);
        else await ledger.updateInteraction(args.interactionId, { sha256: digest.sha256, sizeBytes: digest.size });
        if (!firstClaim) {
          const claim = await claimFile(ledger, args, target);
          if (claim.kind === 'busy') return claim;
        }
        if (!args.resendRecorded && !firstClaim) {
          const held = await deliverIfHeld(ledger, system, args, target, digest, signal);
          if (held?.kind === 'held') return held;
        }
        if (digest.size > args.localSendMaxBytes) return { kind: 'large', size: digest.size };
        const sent = await timed(deps.observeTransfer, 'send', target, () => put(system, args, digest, signal));
        try {
          const verdict = await timed(
            deps.observeTransfer,
            'verify',
            target,
            () => verify(system, args, digest, signal, sent),
            (v) => (v.ok ? 'ok' : 'failed'),
          );
          return { kind: 'sent', ...digest, verdict };
        } catch (err) {
          throw verifyFailure(err);
        }
      });
    },

    /** Streams a large file to its recording system, heartbeating; records the send. */
    async sendFile(args: FileRef & { resend: number; paced?: boolean; resendRecorded?: boolean }): Promise<Digest> {
      return withHeartbeat(heartbeatEveryMs, (signal) =>
        mapped(async () => {
          const system = systemFor(targets, args.item.target);
          const digest = await readSource(args, signal);
          await ledger.updateInteraction(args.interactionId, {
            sha256: digest.sha256,
            sizeBytes: digest.size,
            status: 'SENDING',
          });
          const sent = await put(system, args, digest, signal);
          await ledger.recordStep(args.interactionId, [sent], { status: 'VERIFYING' });
          return digest;
        }),
      );
    },

    /** Applies the preset rules to the recording system's receipt; records RECORDED when all pass. */
    async verifyFile(
      args: FileRef & Digest & { resend: number; paced?: boolean; resendRecorded?: boolean },
    ): Promise<Verdict> {
      const signal = Context.current().cancellationSignal;
      return mapped(() => verify(systemFor(targets, args.item.target), args, args, signal));
    },
  };
}
