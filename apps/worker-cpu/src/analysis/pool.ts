import { Piscina } from 'piscina';
import { threadModulePath, type ClipCandidate } from '@clipline/shared';
import type { ScryptParams } from '../crypto/password-hash.js';
import { SecretDecryptionError, type Keyring } from '@clipline/shared/crypto';
import type { CropKeyframe, CropPathInput } from '../render/crop-plan.js';
import type { FrameInterest } from '../render/interest-profile.js';
import type { FrameBatch, FrameMetrics, WithFrames } from './frame-metrics.js';
import type { ProbeResult } from './ffmpeg.js';
import type { HighlightOptions, HighlightSignals } from '@clipline/shared/clips';

export interface CpuPoolOptions {
  /** Threads of the pool; one per available core is the usual choice (`CPU_POOL_THREADS`). */
  threads: number;
  /** Tasks waiting per thread before `run` callers wait too. @defaultValue 4 */
  queuePerThread?: number;
  /**
   * A thread that failed with no task of its own (one started to replace an aborted task's
   * thread, say); a task's failure goes to its caller. Without it such an error is ignored.
   */
  onThreadError?: (error: unknown) => void;
}

/** The one thread pool of a worker-cpu process. */
export class CpuPool {
  private readonly pool: Piscina;
  private closing: Promise<void> | undefined;

  constructor(readonly options: CpuPoolOptions) {
    this.pool = new Piscina({
      filename: threadModulePath(import.meta.url, './pool-tasks.js'),
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: 60_000,
      maxQueue: options.threads * (options.queuePerThread ?? 4) * 64,
    });
    // Piscina emits such a failure on the pool: unheard, it would end the process.
    this.pool.on('error', (error: unknown) => options.onThreadError?.(error));
  }

  get threads(): number {
    return this.options.threads;
  }

  private run<R>(name: string, task: unknown, signal?: AbortSignal, transferList?: ArrayBuffer[]): Promise<R> {
    return this.pool.run(task, { name, ...(transferList ? { transferList } : {}), ...(signal ? { signal } : {}) }) as Promise<R>;
  }

  /** Metrics of a batch of frames; the frame buffer is moved into the thread and back, not copied. */
  frameMetrics(batch: FrameBatch, signal?: AbortSignal): Promise<WithFrames<FrameMetrics[]>> {
    return this.run('frameMetrics', batch, signal, [batch.frames.buffer as ArrayBuffer]);
  }

  /**
   * Metrics of a batch of frames plus their interest profiles, quantised as analysis stores them
   * (see `render/interest-store.ts`); the frame buffer is moved into the thread and back.
   */
  analysisFrames(batch: FrameBatch, signal?: AbortSignal): Promise<WithFrames<{ metrics: FrameMetrics[]; profiles: Uint8Array }>> {
    return this.run('analysisFrames', batch, signal, [batch.frames.buffer as ArrayBuffer]);
  }

  /** Scores clip candidates; the signal arrays are moved into the thread (the caller must not use them after). */
  clipCandidates(signals: HighlightSignals, options: HighlightOptions, signal?: AbortSignal): Promise<ClipCandidate[]> {
    const transfer = [signals.motion.buffer, signals.sharpness.buffer, signals.dhash.buffer] as ArrayBuffer[];
    return this.run('clipCandidates', { signals, options }, signal, transfer);
  }

  /** Interest profiles, sharpness and content score of a batch of frames; the buffer is moved there and back, not copied. */
  clipInterest(batch: FrameBatch, signal?: AbortSignal): Promise<WithFrames<FrameInterest[]>> {
    return this.run('clipInterest', batch, signal, [batch.frames.buffer as ArrayBuffer]);
  }

  /** Plans a crop window's path through a clip from its interest profiles. */
  cropPath(input: CropPathInput, signal?: AbortSignal): Promise<CropKeyframe[]> {
    return this.run('cropPath', input, signal);
  }

  /**
   * A video's facts from its MP4 index, read inside a pool thread (undefined when the index does
   * not state them all): a two-hour source's index takes tens of milliseconds to walk, which
   * would hold this thread's event loop, its lock renewals and its progress events.
   */
  mp4Facts(file: string, signal?: AbortSignal): Promise<ProbeResult | undefined> {
    return this.run('mp4Facts', { file }, signal);
  }

  /** SHA-256 (hex) of a file, read and hashed inside a pool thread. */
  sha256File(file: string, signal?: AbortSignal): Promise<string> {
    return this.run('contentHash', { file }, signal);
  }

  /** scrypt hash of a password in its encoded form (`$scrypt$ln=…`); see `crypto/password-hash.ts`. */
  hashPassword(password: string, params?: ScryptParams): Promise<string> {
    return this.run('hashPassword', { password, ...(params ? { params } : {}) });
  }

  /**
   * Opens a password sealed with {@link encryptSecret} (e.g. by the API, bound to the user id as
   * `associatedData`) and hashes it, both in one pool thread, so the clear password never
   * reaches the main thread or a log.
   */
  async hashSealedPassword(sealedPassword: string, keyring: Keyring, associatedData?: string, params?: ScryptParams): Promise<string> {
    const outcome = await this.run<{ hash: string } | { unopenable: string }>('hashSealedPassword', {
      sealedPassword,
      keyring,
      associatedData,
      ...(params ? { params } : {}),
    });
    if ('unopenable' in outcome) throw new SecretDecryptionError(outcome.unopenable);
    return outcome.hash;
  }

  /** True when the password matches the encoded hash; a malformed hash rejects. */
  verifyPassword(password: string, encoded: string): Promise<boolean> {
    return this.run('verifyPassword', { password, encoded });
  }

  /** Seals a secret with the keyring's current key (AES-256-GCM); see `crypto/secret-box.ts`. */
  encryptSecret(plaintext: string, keyring: Keyring, associatedData?: string): Promise<string> {
    return this.run('encryptSecret', { plaintext, keyring, associatedData });
  }

  /** Opens a sealed secret with the key it names. */
  decryptSecret(token: string, keyring: Keyring, associatedData?: string): Promise<string> {
    return this.run('decryptSecret', { token, keyring, associatedData });
  }

  /** Re-seals a secret under the current key (key rotation). */
  reencryptSecret(token: string, keyring: Keyring, associatedData?: string): Promise<string> {
    return this.run('reencryptSecret', { token, keyring, associatedData });
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  /** Tasks waiting for a free thread. */
  get queued(): number {
    return this.pool.queueSize;
  }

  close(): Promise<void> {
    this.closing ??= this.pool.destroy();
    return this.closing;
  }
}
