import { z } from 'zod';

export const videoId = z.uuid({ message: 'expected a UUID' });

/** Every step of a video pipeline carries at least the video it works for. */
export const videoStepPayload = z.strictObject({ videoId });
export type VideoStepPayload = z.infer<typeof videoStepPayload>;
