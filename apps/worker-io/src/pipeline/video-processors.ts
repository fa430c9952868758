/**
 * worker-io's processors of the video pipeline table: ingest, persist and the parent job. The
 * parent's phases come from the table (`runParentPhases`); this file adds only what the table
 * cannot say: how to tell whether the render fan-out succeeded.
 */
import {
  analyzeResult,
  parentFlowStep,
  parseSource,
  PermanentJobError,
  persistedAnalysis,
  runParentPhases,
  runVideoStep,
  VIDEO_FLOW_PARENT,
  type AnalysisRepository,
  type FanOutSettler,
  type ingestQueue,
  type JobQueues,
  type PersistedAnalysis,
  type persistQueue,
  type pipelineQueue,
  type Processors,
  type VideosRepository,
} from '@clipline/shared';
import { fetchSource, type FetchSettings } from '../ingest/fetch-source.js';
import { selectClips, type SelectionDependencies } from './clip-selection.js';

/** Videos untouched this long are checked by the reconciler, at most this many per run. */
const RECONCILE_AFTER_SECONDS = 300;
const RECONCILE_BATCH = 200;

export function ingestProcessors(settings: FetchSettings, videos: VideosRepository): Processors<typeof ingestQueue> {
  return {
    'ingest-video': (job) =>
      runVideoStep('ingest', job, videos, async (step) => {
        const parsed = parseSource(job.data.source);
        if (!parsed.ok) throw new PermanentJobError(parsed.reason);
        const stored = await fetchSource(settings, job.data.videoId, parsed.source, {
          signal: job.signal,
          onProgress: (fraction) => step.progress(fraction),
        });
        await videos.setSource(job.data.videoId, { storageKey: stored.storageKey, sizeBytes: stored.sizeBytes });
        return stored;
      }),
  };
}

export function persistProcessors(videos: VideosRepository, selection: SelectionDependencies): Processors<typeof persistQueue> {
  return {
    'persist-analysis': async (job) => {
      let summary = '';
      const persisted = await runVideoStep('persist', job, videos, async (): Promise<PersistedAnalysis> => {
        const parsed = analyzeResult.safeParse(job.data.analysis);
        if (!parsed.success) throw new PermanentJobError(`analysis result is malformed: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
        const analysis = parsed.data;
        await videos.saveAnalysis(job.data.videoId, analysis.metadata, analysis.scenes);
        // The transcript (made alongside the analysis) is in: the clips are chosen now, on speech.
        const chosen = await selectClips(selection, job.data.videoId, analysis, job.signal);
        summary = chosen.summary;
        job.logger.info({ videoId: job.data.videoId, clips: chosen.clips.length, boundaries: chosen.boundaries, ranking: chosen.ranking }, 'clips chosen');
        // The pipeline parent renders these next: they travel on as this step's result.
        return {
          scenes: analysis.scenes.length,
          clipCandidates: chosen.clips,
          aspect: analysis.clipOptions.aspect,
          captions: analysis.clipOptions.captions,
          boundaries: chosen.boundaries,
          ranking: chosen.ranking,
          ...(chosen.shortfall ? { shortfall: chosen.shortfall } : {}),
        };
      });
      // The step says how its clips were chosen (users read it in the video's steps).
      if (summary) await videos.setStep(job.data.videoId, 'persist', 'completed', { reason: summary });
      return persisted;
    },
  };
}

/**
 * Render succeeded when at least one clip rendered: the step completes (naming the clips that
 * failed); when every clip failed, the video fails. The clips are the candidates the step was
 * given: one whose render job ended without recording it (failed on stalls before it started,
 * its worker crashing each time) counts as failed, as one recorded failed does.
 */
function settleRenders(videos: VideosRepository, analyses: AnalysisRepository): FanOutSettler {
  return async (step, videoId, consumed) => {
    const persisted = persistedAnalysis.safeParse(consumed).data;
    const clips = await analyses.listClips(videoId);
    const expected = Math.max(clips.length, persisted?.clipCandidates.length ?? 0);
    // Nothing to render: the step was skipped with its reason when it started.
    if (expected === 0) return true;
    const failed = clips.filter((clip) => clip.status !== 'rendered');
    const unrecorded = expected - clips.length;
    const failures = failed.length + unrecorded;
    const firstError = failed[0]?.error ?? (unrecorded ? 'its render job ended without rendering it' : 'unknown error');
    if (failures === expected) {
      await videos.failVideo(videoId, step.name, `${step.name}: no clip could be rendered (${firstError})`);
      return false;
    }
    const reasons = [failures ? `${failures} of ${expected} clips failed: ${firstError}` : '', persisted?.shortfall ?? ''].filter(Boolean);
    await videos.setStep(videoId, step.name, 'completed', { reason: reasons.length ? reasons.join('; ') : null });
    return true;
  };
}

/**
 * The parent of a video's flow. It first runs when the chain (ingest) is done, then runs the parent phases of the table, each adding children and parking until they
 * finish. Optional children (the AI steps) never fail the video; render fails it only when no
 * clip could be rendered.
 */
export function pipelineProcessors(videos: VideosRepository, analyses: AnalysisRepository, jobs: JobQueues): Processors<typeof pipelineQueue> {
  const settle = settleRenders(videos, analyses);
  /** Where the reconciler's next page starts: after the last video of a full page, else from the first. */
  let reconciledUpTo: string | undefined;
  return {
    // The safety net behind onFinalFailure: a video whose flow failed in Redis (a parent failed
    // by its child) or disappeared, while the record was never told (the database was away,
    // the settling process died), is failed here with the flow's own reason.
    'reconcile-videos': async () => {
      const suspects = await videos.unfinishedSince(RECONCILE_AFTER_SECONDS, RECONCILE_BATCH, reconciledUpTo);
      reconciledUpTo = suspects.length === RECONCILE_BATCH ? suspects.at(-1) : undefined;
      let settled = 0;
      for (const videoId of suspects) {
        const parent = parentFlowStep(videoId);
        const view = await jobs.get(parent.declaration, parent.jobId);
        if (view && view.state !== 'failed') continue;
        const step = VIDEO_FLOW_PARENT.step;
        await videos.failVideo(videoId, step, `${step}: ${view?.failedReason ?? 'its jobs were lost from the queue'}`);
        settled++;
      }
      return { checked: suspects.length, settled };
    },
    'video-pipeline': async (job) => {
      const { videoId } = job.data;
      const video = await videos.find(videoId);
      if (!video) throw new PermanentJobError(`video ${videoId} does not exist`);
      if (video.status === 'cancelled' || video.status === 'failed') return { finished: video.status };
      if ((await runParentPhases(job, video, videos, settle)) === 'failed') return { finished: 'failed' };
      const completed = await videos.setStatus(videoId, 'completed');
      job.logger.info({ videoId, completed }, 'video pipeline finished');
      return { finished: 'completed' };
    },
  };
}
