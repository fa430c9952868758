/**
 * The parent job's phases, read from the table: each phase adds the steps still pending as
 * children and parks until they finish. The steps' states come from the database, so a retry
 * (or the run after parking) resumes where it was: a step already started is not added again.
 */
import type { StepStatus } from '../db/schema.js';
import type { VideosRepository, VideoView } from '../db/videos-repository.js';
import type { JobHandle } from '../jobs/worker-runtime.js';
import { PARENT_PHASES, phaseSteps, stepJobs, type VideoStepDefinition, videoJobId } from './video-flow.js';

type ParentJob = Pick<JobHandle<{ videoId: string }>, 'data' | 'childResults' | 'childFailures' | 'addChildren' | 'waitForChildren'>;

/**
 * Settles a fan-out step once its children finished (e.g. render: completed when some clip
 * rendered). Returns false when the video failed for it: the remaining phases are not run.
 */
export type FanOutSettler = (step: VideoStepDefinition, videoId: string, consumed: unknown) => Promise<boolean>;

/** The result of an earlier step a step consumes, found among the parent's child results by its schema. */
async function consumedBy(job: ParentJob, step: VideoStepDefinition): Promise<unknown> {
  if (!step.consumes) return undefined;
  const schema = step.consumes;
  return (await job.childResults()).find((value) => schema.safeParse(value).success);
}

/** Adds the pending steps of a phase as children; fan-out steps become active, or skipped when there is nothing to fan out to. */
async function startSteps(job: ParentJob, video: VideoView, pending: readonly VideoStepDefinition[], videos: VideosRepository): Promise<void> {
  const videoId = video.id;
  const planned = await Promise.all(
    pending.map(async (step) => ({
      step,
      jobs: stepJobs(step, { videoId, source: video.source, options: video.options, consumed: await consumedBy(job, step) }),
    })),
  );
  // Children first, then the steps' states: a crash in between re-adds the same job ids on retry.
  // Every child is optional to BullMQ: what a failure means for the video is the steps' business.
  await job.addChildren(planned.flatMap(({ jobs }) => jobs.map((step) => ({ step, optional: true }))));
  for (const { step, jobs } of planned) {
    if (!step.fanOut) continue;
    if (jobs.length) await videos.setStep(videoId, step.name, 'active', { attempts: 1 });
    else await videos.setStep(videoId, step.name, 'skipped', { reason: step.nothingToDo ?? 'nothing to do' });
  }
}

/**
 * Whether the phase's essential steps finished as their processors recorded them, once its
 * children are done. Every child is optional to BullMQ, so the parent runs on after any of them
 * failed: a failure the step's processor recorded has failed the video already; one it never saw
 * (a job failed for stalling too often, which BullMQ fails without running it again) left the
 * step unsettled, and the video is failed here with BullMQ's reason. Without this the next
 * phases ran on missing results, and a video whose persist step failed could complete without
 * clips.
 */
async function essentialStepsSettled(job: ParentJob, videoId: string, steps: readonly VideoStepDefinition[], videos: VideosRepository): Promise<boolean> {
  const essential = steps.filter((step) => step.essential && !step.fanOut);
  if (essential.length === 0) return true;
  // A retry that never parked (a blip after the steps started) waits here for children still running.
  await job.waitForChildren();
  const fresh = await videos.find(videoId);
  if (!fresh || fresh.status === 'failed' || fresh.status === 'cancelled') return false;
  const status = new Map(fresh.steps.map((step) => [step.name, step.status]));
  const unsettled = essential.find((step) => status.get(step.name) !== 'completed' && status.get(step.name) !== 'skipped');
  if (!unsettled) return true;
  const reason = (await job.childFailures())[videoJobId(videoId, unsettled.name)];
  await videos.failVideo(videoId, unsettled.name, `${unsettled.name}: ${reason ?? 'its job ended without recording an outcome'}`);
  return false;
}

/**
 * Runs the parent phases of one video. Returns `failed` when a fan-out step failed the video,
 * `finished` once every phase is through (the caller completes the video).
 */
export async function runParentPhases(job: ParentJob, video: VideoView, videos: VideosRepository, settle: FanOutSettler): Promise<'finished' | 'failed'> {
  // States as this run found them: a step started by this run is still `pending` here, so it is
  // settled in the same run when its children are already done.
  const statusAtStart = new Map<string, StepStatus>(video.steps.map((step) => [step.name, step.status]));
  for (const phase of PARENT_PHASES) {
    const steps = phaseSteps(phase);
    const pending = steps.filter((step) => statusAtStart.get(step.name) === 'pending');
    if (pending.length) {
      await startSteps(job, video, pending, videos);
      await job.waitForChildren();
    }
    if (!(await essentialStepsSettled(job, video.id, steps, videos))) return 'failed';
    for (const step of steps.filter((candidate) => candidate.fanOut && ['pending', 'active'].includes(statusAtStart.get(candidate.name) ?? ''))) {
      // A retry that never parked (a blip after the step turned active) waits here for the children still running.
      await job.waitForChildren();
      if (!(await settle(step, video.id, await consumedBy(job, step)))) return 'failed';
    }
  }
  return 'finished';
}
