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

/**
 * Waits until at least `count` of the videos are being analysed (analysis holds a CPU job lock).
 * With `orDone`, a video already past its analysis counts too: a short video can go through it
 * between two polls, and a drill that only needs work under way must not wait for one that never
 * comes. The timeout names each video's last seen analysis status.
 */
export async function waitForAnalysis(
  processes: ClipLineProcesses,
  ids: readonly string[],
  { count = 1, orDone = false, timeoutMs = 60_000 }: { count?: number; orDone?: boolean; timeoutMs?: number } = {},
): Promise<string[]> {
  const wanted = orDone ? ['active', 'completed'] : ['active'];
  let seen: string[] = [];
  return waitFor(
    async () => {
      const answers = await Promise.all(ids.map((id) => processes.api('GET', `/v1/videos/${id}`)));
      const statuses = answers.map((answer) => analysisStatusOf(answer));
      seen = statuses;
      const analysing = ids.filter((_, index) => wanted.includes(statuses[index]!));
      return analysing.length >= count ? analysing : undefined;
    },
    timeoutMs,
    `${count} video(s) to be in analysis${orDone ? ' or past it' : ''}`,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last seen: ${ids.map((id, index) => `${id} ${seen[index] ?? 'unanswered'}`).join(', ')})`);
  });
}

/** The analysis step's status in an answer to GET /v1/videos/:id, or what the answer was instead. */
function analysisStatusOf(answer: ApiAnswer): string {
  if (answer.status !== 200) return `HTTP ${answer.status}`;
  const step = (answer.body.steps as { name: string; status: string }[] | undefined)?.find((candidate) => candidate.name === 'analyze');
  return step?.status ?? `video ${answer.body.status} without an analyze step`;
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
