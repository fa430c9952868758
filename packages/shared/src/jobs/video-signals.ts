import type { RedisClient } from '../redis.js';
import { createRedis } from '../redis.js';

type Listener = (videoId: string) => void;

/**
 * Cross-process signals about videos over Redis pub/sub: "this video changed" (live event
 * streams re-read it) and "this video was cancelled" (workers abort its running steps).
 * Messages are hints, never the record: the database stays the source of truth, so a lost
 * message delays an update but cannot corrupt one.
 */
export class VideoSignals {
  private subscriber: RedisClient | undefined;
  private readonly listeners = { change: new Set<Listener>(), cancel: new Set<Listener>() };
  private readonly channels: { change: string; cancel: string };

  constructor(
    private readonly publisher: RedisClient,
    private readonly redisUrl: string,
    prefix: string,
  ) {
    this.channels = { change: `${prefix}:signals:video-changed`, cancel: `${prefix}:signals:video-cancelled` };
  }

  changed(videoId: string): void {
    this.publisher.publish(this.channels.change, videoId).catch(() => {});
  }

  async cancelled(videoId: string): Promise<void> {
    await this.publisher.publish(this.channels.cancel, videoId);
  }

  onChange(listener: Listener): () => void {
    return this.listen('change', listener);
  }

  onCancel(listener: Listener): () => void {
    return this.listen('cancel', listener);
  }

  /** Resolves once the subscriber connection is subscribed (tests wait for it). */
  async ready(): Promise<void> {
    await this.subscribe();
  }

  private listen(kind: 'change' | 'cancel', listener: Listener): () => void {
    this.listeners[kind].add(listener);
    void this.subscribe();
    return () => this.listeners[kind].delete(listener);
  }

  private subscribing: Promise<void> | undefined;
  private subscribe(): Promise<void> {
    this.subscribing ??= (async () => {
      const subscriber = createRedis(this.redisUrl, 'worker');
      this.subscriber = subscriber;
      subscriber.on('message', (channel: string, message: string) => {
        const kind = channel === this.channels.change ? 'change' : channel === this.channels.cancel ? 'cancel' : undefined;
        if (!kind) return;
        for (const listener of this.listeners[kind]) listener(message);
      });
      await subscriber.subscribe(this.channels.change, this.channels.cancel);
    })();
    return this.subscribing;
  }

  async close(): Promise<void> {
    this.listeners.change.clear();
    this.listeners.cancel.clear();
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}
