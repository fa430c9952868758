/**
 * The functions the piscina pool runs, one named export each (selected with the `name` run
 * option). This file is loaded inside worker threads only; each task takes one argument.
 */
import type { ClipCandidate } from '@clipline/shared';
import { hashPassword as hashPasswordSync, verifyPassword as verifyPasswordSync, type ScryptParams } from '../crypto/password-hash.js';
import { decryptSecret as decrypt, encryptSecret as encrypt, reencryptSecret as reencrypt, SecretDecryptionError, type Keyring } from '@clipline/shared/crypto';
import { sha256File } from '../hashing/content-hash.js';
import { planCropPath, type CropKeyframe, type CropPathInput } from '../render/crop-plan.js';
import { interestProfiles } from '../render/interest-profile.js';
import { quantiseInterest } from '../render/interest-store.js';
import { batchMetrics, measureBatch, type FrameBatch, type WithFrames } from './frame-metrics.js';
import { mp4Facts as readFacts } from './mp4-facts.js';
import type { ProbeResult } from './ffmpeg.js';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { clipCandidates as scoreClips, type HighlightOptions, type HighlightSignals } from '@clipline/shared/clips';

/**
 * A frame task's result with the batch's buffer moved back out of the thread (not copied), for
 * the sampler to fill again (see `FrameBuffers`).
 */
function handBack<T>(value: T, batch: FrameBatch): unknown {
  const back: WithFrames<T> = { value, frames: batch.frames };
  return move({
    get [transferableSymbol]() {
      return [batch.frames.buffer];
    },
    get [valueSymbol]() {
      return back;
    },
  } as Parameters<typeof move>[0]);
}

export function frameMetrics(batch: FrameBatch): unknown {
  return handBack(batchMetrics(batch), batch);
}

/** Metrics of a batch and, quantised for storage, its frames' interest profiles (analysis keeps both). */
export function analysisFrames(batch: FrameBatch): unknown {
  const { metrics, profiles } = measureBatch(batch, { metrics: true, profiles: true });
  return handBack({ metrics, profiles: quantiseInterest(profiles) }, batch);
}

export function clipCandidates(task: { signals: HighlightSignals; options: HighlightOptions }): ClipCandidate[] {
  return scoreClips(task.signals, task.options);
}

export function clipInterest(batch: FrameBatch): unknown {
  return handBack(interestProfiles(batch), batch);
}

export function cropPath(input: CropPathInput): CropKeyframe[] {
  return planCropPath(input);
}

export function mp4Facts(task: { file: string }): Promise<ProbeResult | undefined> {
  return readFacts(task.file);
}

export function contentHash(task: { file: string }): Promise<string> {
  return sha256File(task.file);
}

export function hashPassword(task: { password: string; params?: ScryptParams }): string {
  return hashPasswordSync(task.password, task.params);
}

/** Opens a sealed password and hashes it in the same thread: the clear password never reaches the main thread. */
/**
 * A sealed password that does not open comes back as `{ unopenable }` rather than thrown: an
 * error's class does not survive the trip out of the thread, and the caller must tell this
 * failure (permanent) from the others.
 */
export function hashSealedPassword(task: {
  sealedPassword: string;
  keyring: Keyring;
  associatedData?: string;
  params?: ScryptParams;
}): { hash: string } | { unopenable: string } {
  let password: string;
  try {
    password = decrypt(task.sealedPassword, task.keyring, task.associatedData);
  } catch (error) {
    if (error instanceof SecretDecryptionError) return { unopenable: error.message };
    throw error;
  }
  return { hash: hashPasswordSync(password, task.params) };
}

export function verifyPassword(task: { password: string; encoded: string }): boolean {
  return verifyPasswordSync(task.password, task.encoded);
}

export function encryptSecret(task: { plaintext: string; keyring: Keyring; associatedData?: string }): string {
  return encrypt(task.plaintext, task.keyring, task.associatedData);
}

export function decryptSecret(task: { token: string; keyring: Keyring; associatedData?: string }): string {
  return decrypt(task.token, task.keyring, task.associatedData);
}

export function reencryptSecret(task: { token: string; keyring: Keyring; associatedData?: string }): string {
  return reencrypt(task.token, task.keyring, task.associatedData);
}
