/**
 * Short generated videos with known cuts, and the requests an outage drill makes with them:
 * waiting for analysis to be under way, and submitting until the API accepts again.
 */
import path from 'node:path';
import { generateVideo, type GeneratedVideo } from '../../helpers/media.js';
import { waitFor } from '../../helpers/services.js';
import type { ApiAnswer, ClipLineProcesses } from './clipline-processes.js';

/** Short clips from short videos, so each video renders two of them quickly. */
export const SHORT_CLIPS = { clipCount: 2, minClipSeconds: 1, maxClipSeconds: 2, aspect: '9:16' } as const;

/**
 * `count` different 320x240 videos of about 4-5 s with two cuts each. Segment lengths differ
 * per video, so no two share bytes and none reuses another's analysis.
 */
export async function generateBatch(dir: string, count: number): Promise<GeneratedVideo[]> {
  const videos: GeneratedVideo[] = [];
  for (let index = 0; index < count; index++) {
    const segments = [1.2 + 0.1 * index, 1.8 - 0.1 * index, 1.4 + 0.05 * index];
    videos.push(await generateVideo({ path: path.join(dir, `video-${index}.mp4`), segments, width: 320, height: 240 }));
  }
  return videos;
}

export function submissionOf(video: GeneratedVideo): { source: string; title: string; options: typeof SHORT_CLIPS } {
  return { source: video.path, title: path.basename(video.path), options: SHORT_CLIPS };
}

/** Waits until at least `count` of the videos are being analysed (analysis holds a CPU job lock). */
export async function waitForAnalysis(processes: ClipLineProcesses, ids: readonly string[], count = 1, timeoutMs = 60_000): Promise<string[]> {
  return waitFor(
    async () => {
      const answers = await Promise.all(ids.map((id) => processes.api('GET', `/v1/videos/${id}`)));
      const analysing = answers.filter((answer) => answer.body.steps?.find((step: { name: string }) => step.name === 'analyze')?.status === 'active');
      return analysing.length >= count ? analysing.map((answer) => answer.body.id as string) : undefined;
    },
    timeoutMs,
    `${count} video(s) to be in analysis`,
  );
}

/**
 * Posts the submission until it is accepted (202), and returns its id with every answer seen
 * on the way; a request that got no answer at all is recorded as status 0.
 */
export async function submitUntilAccepted(processes: ClipLineProcesses, submission: object, timeoutMs = 30_000): Promise<{ id: string; answers: ApiAnswer[] }> {
  const answers: ApiAnswer[] = [];
  const id = await waitFor(
    async () => {
      const answer = await processes.api('POST', '/v1/videos', submission, 10_000).catch(unanswered);
      answers.push(answer);
      return answer.status === 202 ? (answer.body.id as string) : undefined;
    },
    timeoutMs,
    'a submission to be accepted again',
  );
  return { id, answers };
}

/** What a request that got no answer (refused connection, timeout) is recorded as. */
export function unanswered(error: unknown): ApiAnswer {
  return { status: 0, body: { error: String(error) }, retryAfter: null, ms: -1 };
}

/** Statuses and details of answers, compact enough to compare in one expectation. */
export function summarise(answers: readonly ApiAnswer[]): { status: number; detail: unknown }[] {
  return answers.map((answer) => ({ status: answer.status, detail: answer.body.detail ?? answer.body.error ?? null }));
}
