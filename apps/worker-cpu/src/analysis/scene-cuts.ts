export interface SceneCutOptions {
  /** Sampled frames per second the scores were computed at. */
  fps: number;
  /** Content score at or above which a frame starts a new scene. PySceneDetect's default: 27. */
  threshold?: number;
  /** Shortest scene, in seconds; a cut closer than this to the previous one is ignored. */
  minSceneSeconds?: number;
}

export const DEFAULT_CONTENT_THRESHOLD = 27;

/** Indices of the sampled frames that start a new scene. */
export function detectCutFrames(scores: ArrayLike<number>, options: SceneCutOptions): number[] {
  const threshold = options.threshold ?? DEFAULT_CONTENT_THRESHOLD;
  const minGap = Math.max(1, Math.round((options.minSceneSeconds ?? 0.5) * options.fps));
  const cuts: number[] = [];
  let last = 0;
  for (let i = 1; i < scores.length; i++) {
    if (scores[i]! >= threshold && i - last >= minGap) {
      cuts.push(i);
      last = i;
    }
  }
  return cuts;
}

export interface SceneSpan {
  startSeconds: number;
  endSeconds: number;
}

/** Scenes covering [0, duration] split at the given cut times (seconds, ascending). */
export function scenesFromCuts(cutSeconds: readonly number[], durationSeconds: number): SceneSpan[] {
  const bounds = [0, ...cutSeconds.filter((t) => t > 0 && t < durationSeconds), durationSeconds];
  const scenes: SceneSpan[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    scenes.push({ startSeconds: round3(bounds[i]!), endSeconds: round3(bounds[i + 1]!) });
  }
  return scenes;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
