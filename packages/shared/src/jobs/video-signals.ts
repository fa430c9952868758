import type { RedisClient } from '../redis.js';
import { createRedis } from '../redis.js';

type Listener = (videoId: string) => void;
type Kind = 'change' | 'cancel' | 'fail';

/**
 * Cross-process signals about videos over Redis pub/sub: "this video changed" (live event
 * streams re-read it), "this video was cancelled" (workers abort its running steps) and "this
 * video failed" (workers stop its running optional steps, which could no longer add to it).
 * Messages are hints, never the record: the database stays the source of truth, so a lost
 * message delays an update but cannot corrupt one.
 */
export class VideoSignals {
  private subscriber: RedisClient | undefined;
  private readonly listeners: Record<Kind, Set<Listener>> = { change: new Set(), cancel: new Set(), fail: new Set() };
  private readonly channels: Record<Kind, string>;

  constructor(
    private readonly publisher: RedisClient,
    private readonly redisUrl: string,
    prefix: string,
  ) {
    this.channels = {
      change: `${prefix}:signals:video-changed`,
      cancel: `${prefix}:signals:video-cancelled`,
      fail: `${prefix}:signals:video-failed`,
    };
  }

  changed(videoId: string): void {
    this.publisher.publish(this.channels.change, videoId).catch(() => {});
  }

  async cancelled(videoId: string): Promise<void> {
    await this.publisher.publish(this.channels.cancel, videoId);
  }

  /** A hint like the others: a lost one leaves the optional steps to finish, as they would have. */
  failed(videoId: string): void {
    this.publisher.publish(this.channels.fail, videoId).catch(() => {});
  }

  onChange(listener: Listener): () => void {
    return this.listen('change', listener);
  }

  onCancel(listener: Listener): () => void {
    return this.listen('cancel', listener);
  }

  /** Failed videos, for the worker runtime: their running optional jobs are stopped. */
  onAbandon(listener: (videoId: string, reason: string) => void): () => void {
    return this.listen('fail', (videoId) => listener(videoId, 'the video failed'));
  }

  /** Resolves once the subscriber connection is subscribed (tests wait for it). */
  async ready(): Promise<void> {
    await this.subscribe();
  }

  private listen(kind: Kind, listener: Listener): () => void {
    this.listeners[kind].add(listener);
    // A subscription refused now is tried again by the next listener (and reported by `ready`).
    this.subscribe().catch(() => {});
    return () => this.listeners[kind].delete(listener);
  }

  private subscribing: Promise<void> | undefined;
  private subscribe(): Promise<void> {
    this.subscribing ??= (async () => {
      const subscriber = createRedis(this.redisUrl, 'worker');
      this.subscriber = subscriber;
      subscriber.on('message', (channel: string, message: string) => {
        const kind = (Object.keys(this.channels) as Kind[]).find((name) => this.channels[name] === channel);
        if (!kind) return;
        for (const listener of this.listeners[kind]) listener(message);
      });
      await subscriber.subscribe(...Object.values(this.channels));
    })().catch((error: unknown) => {
      this.subscribing = undefined;
      this.subscriber?.disconnect();
      throw error;
    });
    return this.subscribing;
  }

  async close(): Promise<void> {
    for (const listeners of Object.values(this.listeners)) listeners.clear();
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}
