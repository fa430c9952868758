import {
  ingestResult,
  PermanentJobError,
  runVideoStep,
  type AnalysisRepository,
  type analyzeQueue,
  type AnalyzeResult,
  type LocalStorage,
  type Processors,
  type VideosRepository,
} from '@clipline/shared';
import { analyzeWithReuse } from './analysis-reuse.js';
import { resolveClipOptions, type AnalysisSettings } from './analyze-video.js';

export interface AnalyzeDependencies {
  settings: AnalysisSettings;
  videos: VideosRepository;
  analyses: AnalysisRepository;
  storage: LocalStorage;
}

export function analyzeProcessors(deps: AnalyzeDependencies): Processors<typeof analyzeQueue> {
  return {
    'analyze-video': (job) =>
      runVideoStep('analyze', job, deps.videos, async (step): Promise<AnalyzeResult> => {
        // The parent passes on what ingest stored; a job queued by an older producer has ingest as its child.
        const source = job.data.source ? { success: true as const, data: job.data.source } : ingestResult.safeParse((await job.childResults())[0]);
        if (!source.success) throw new PermanentJobError('the ingest step left no stored source to analyse');
        // The submission's clip options travel in the payload; a submission without them gets the defaults.
        const clipOptions = resolveClipOptions(job.data.options);
        return analyzeWithReuse(
          deps.settings,
          deps.analyses,
          {
            videoId: job.data.videoId,
            file: deps.storage.pathOf(source.data.storageKey),
            sizeBytes: source.data.sizeBytes,
            clipOptions,
            storage: deps.storage,
          },
          { signal: job.signal, onProgress: (fraction) => step.progress(fraction) },
        );
      }),
  };
}
