/**
 * The video pipeline, written down once. Each row is one step users see in a video's `steps`,
 * in the order they run: the queue and job that do it, whether the video needs it, the phase it
 * runs in, its share of the progress bar, its job id, and what it reads and returns. The
 * producer's chain, the parent's phases, progress, final-failure handling, reconciliation and
 * the step list all read this table; adding a step is one row here and one processor.
 *
 * Phases: `chain` steps run one after another before the parent job first runs (a BullMQ flow
 * the producer enqueues); the parent then runs `analysis`, `selection`, `clips`, `captions` and
 * `finishing` in turn, each adding its steps as children and parking until they finish. The
 * transcript is made in the `analysis` phase, alongside the picture and sound analysis, so what
 * is said shapes which clips `selection` chooses.
 */
import { z } from 'zod';
import type { VideoOptions } from '../db/schema.js';
import type { FlowStep } from '../jobs/flow-enqueuer.js';
import { elevenlabsQueue, openaiQueue, stabilityQueue } from '../queues/ai.js';
import { analyzeQueue } from '../queues/analyze.js';
import type { JobNames, QueueDeclaration } from '../queues/define.js';
import { ingestQueue, ingestResult } from '../queues/ingest.js';
import { persistQueue } from '../queues/persist.js';
import { pipelineQueue } from '../queues/pipeline.js';
import { renderClipPayloads, renderClipResult, renderQueue } from '../queues/render.js';
import { analyzeResult, persistedAnalysis } from './analysis-result.js';

export type VideoPhase = 'chain' | 'analysis' | 'selection' | 'clips' | 'captions' | 'finishing';

/** The phases the parent job runs, in order (the chain has run before it). */
export const PARENT_PHASES = ['analysis', 'selection', 'clips', 'captions', 'finishing'] as const satisfies readonly VideoPhase[];

/** What a step's jobs are made from: the submission (chain steps) or what an earlier step returned. */
export interface StepInput {
  videoId: string;
  source: string;
  options?: VideoOptions;
  /** The earlier step's result this step consumes, validated by the row's `consumes`. */
  consumed?: unknown;
}

export interface VideoStepRow<N extends string = string, Q extends QueueDeclaration = QueueDeclaration> {
  name: N;
  queue: Q;
  job: JobNames<Q>;
  /** Essential steps fail the video when they fail for good; optional ones are recorded and skipped past. */
  essential: boolean;
  phase: VideoPhase;
  /** Percent of the progress bar the step covers; the ranges follow table order. */
  weight: number;
  /**
   * One job per video (`<videoId>-<step>`), or one per item of what it consumes
   * (`<videoId>-<step>-<index>`); a fan-out step's status is kept by the parent, which marks it
   * active, skipped (nothing to fan out to) or settled.
   */
  fanOut: boolean;
  /** The result of an earlier step this one reads, or null when it reads only its payload and the database. */
  consumes: z.ZodType | null;
  /** What its job returns. */
  produces: z.ZodType;
  /** Why a fan-out step is skipped when there is nothing to fan out to. */
  nothingToDo?: string;
  /** Its jobs' payloads; one element unless the step fans out. @defaultValue `[{ videoId }]` */
  payloads?: (input: StepInput) => { data: unknown; index?: number }[];
}

const row = <const N extends string, Q extends QueueDeclaration>(step: VideoStepRow<N, Q>) => step;

/** What an optional step returns: its own result, or why it was skipped. */
const optionalOutcome = z.union([z.object({ skipped: z.string() }), z.record(z.string(), z.unknown())]);

export const VIDEO_FLOW = [
  row({
    name: 'ingest',
    queue: ingestQueue,
    job: 'ingest-video',
    essential: true,
    phase: 'chain',
    weight: 10,
    fanOut: false,
    consumes: null,
    produces: ingestResult,
    payloads: ({ videoId, source }) => [{ data: { videoId, source } }],
  }),
  row({
    name: 'analyze',
    queue: analyzeQueue,
    job: 'analyze-video',
    essential: true,
    phase: 'analysis',
    weight: 60,
    fanOut: false,
    consumes: ingestResult,
    produces: analyzeResult,
    payloads: ({ videoId, options, consumed }) => {
      const stored = ingestResult.safeParse(consumed);
      return [{ data: { videoId, ...(options ? { options } : {}), ...(stored.success ? { source: stored.data } : {}) } }];
    },
  }),
  row({
    name: 'transcribe',
    queue: openaiQueue,
    job: 'transcribe',
    essential: false,
    phase: 'analysis',
    weight: 0,
    fanOut: false,
    consumes: null,
    produces: optionalOutcome,
  }),
  row({
    name: 'persist',
    queue: persistQueue,
    job: 'persist-analysis',
    essential: true,
    phase: 'selection',
    weight: 5,
    fanOut: false,
    consumes: analyzeResult,
    produces: persistedAnalysis,
    payloads: ({ videoId, consumed }) => [{ data: { videoId, analysis: consumed } }],
  }),
  row({
    name: 'render',
    queue: renderQueue,
    job: 'render-clip',
    essential: true,
    phase: 'clips',
    weight: 24,
    fanOut: true,
    consumes: persistedAnalysis,
    produces: renderClipResult,
    nothingToDo: 'no clip candidates: the video is shorter than the shortest clip asked for, or has no usable stretch',
    payloads: ({ videoId, consumed }) => {
      const persisted = persistedAnalysis.safeParse(consumed);
      if (!persisted.success) return [];
      const { clipCandidates, aspect, captions } = persisted.data;
      return renderClipPayloads(videoId, clipCandidates, aspect, captions).map((data) => ({ data, index: data.clipIndex }));
    },
  }),
  row({
    name: 'captions',
    queue: openaiQueue,
    job: 'write-captions',
    essential: false,
    phase: 'captions',
    weight: 0,
    fanOut: false,
    consumes: null,
    produces: optionalOutcome,
  }),
  row({
    name: 'thumbnail',
    queue: stabilityQueue,
    job: 'generate-thumbnail',
    essential: false,
    phase: 'finishing',
    weight: 0,
    fanOut: false,
    consumes: null,
    produces: optionalOutcome,
  }),
  row({
    name: 'voiceover',
    queue: elevenlabsQueue,
    job: 'voiceover',
    essential: false,
    phase: 'finishing',
    weight: 0,
    fanOut: false,
    consumes: null,
    produces: optionalOutcome,
  }),
] as const;

export type VideoStepName = (typeof VIDEO_FLOW)[number]['name'];
export type VideoStepDefinition = (typeof VIDEO_FLOW)[number];

/** The steps users see in `steps`, in the order of the table. */
export const VIDEO_STEPS: readonly VideoStepName[] = VIDEO_FLOW.map((step) => step.name);

/** The parent job of a video's flow; a failure of the flow itself is recorded on this step name. */
export const VIDEO_FLOW_PARENT = { queue: pipelineQueue, job: 'video-pipeline', step: 'pipeline' } as const;

/** Job ids: `<videoId>-<step>`, `<videoId>-<step>-<index>` for fan-out items, `<videoId>-pipeline` for the parent. */
export function videoJobId(videoId: string, step: VideoStepName | typeof VIDEO_FLOW_PARENT.step, index?: number): string {
  return index === undefined ? `${videoId}-${step}` : `${videoId}-${step}-${index}`;
}

/** Ids of a video's jobs outside its flow: the metadata refresh of a linked YouTube video, the release of its source. */
export function videoSideJobId(videoId: string, job: 'sync' | 'release-source'): string {
  return `${videoId}-${job}`;
}

export function parentFlowStep(videoId: string): FlowStep {
  return { declaration: VIDEO_FLOW_PARENT.queue, jobName: VIDEO_FLOW_PARENT.job, data: { videoId }, jobId: videoJobId(videoId, VIDEO_FLOW_PARENT.step) };
}

/** The jobs of one step for one video, payloads validated later by their queue's schema. */
export function stepJobs(step: VideoStepDefinition, input: StepInput): FlowStep[] {
  const payloads = step.payloads?.(input) ?? [{ data: { videoId: input.videoId } }];
  return payloads.map(({ data, index }) => ({
    declaration: step.queue,
    jobName: step.job,
    data,
    jobId: videoJobId(input.videoId, step.name, step.fanOut ? index : undefined),
  }));
}

/** The chain the producer enqueues: every `chain` step, in table order. */
export function chainSteps(input: StepInput): FlowStep[] {
  return VIDEO_FLOW.filter((step) => step.phase === 'chain').flatMap((step) => stepJobs(step, input));
}

/** The steps of one of the parent's phases, in table order. */
export function phaseSteps(phase: VideoPhase): VideoStepDefinition[] {
  return VIDEO_FLOW.filter((step) => step.phase === phase);
}

/** The share of the progress bar a step covers, [start, end] in percent, from the weights in table order. */
export function stepProgressRange(name: VideoStepName): [number, number] {
  let start = 0;
  for (const step of VIDEO_FLOW) {
    if (step.name === name) return [start, start + step.weight];
    start += step.weight;
  }
  return [0, 100];
}

/** The essential step a job belongs to (the parent counts as `pipeline`), or undefined for optional and unrelated jobs. */
export function essentialStepOfJob(queue: string, job: string): VideoStepName | typeof VIDEO_FLOW_PARENT.step | undefined {
  if (queue === VIDEO_FLOW_PARENT.queue.name && job === VIDEO_FLOW_PARENT.job) return VIDEO_FLOW_PARENT.step;
  return VIDEO_FLOW.find((step) => step.essential && !step.fanOut && step.queue.name === queue && step.job === job)?.name;
}

/** The optional step a job belongs to (transcript, captions, thumbnail, voice-over), or undefined. */
export function optionalStepOfJob(queue: string, job: string): VideoStepName | undefined {
  return VIDEO_FLOW.find((step) => !step.essential && step.queue.name === queue && step.job === job)?.name;
}

/** Whether a job is one of a video's optional steps (transcript, captions, thumbnail, voice-over). */
export function isOptionalStepJob(queue: string, job: string): boolean {
  return optionalStepOfJob(queue, job) !== undefined;
}
