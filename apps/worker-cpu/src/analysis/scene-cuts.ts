export interface SceneCutOptions {
  /** Sampled frames per second the scores were computed at. */
  fps: number;
  /** Content score at or above which a frame may start a new scene. PySceneDetect's default: 27. */
  threshold?: number;
  /**
   * How many times its neighbours' mean score a frame's score must be to count as a cut (the
   * adaptive test). Noisy or fast-moving content scores high on every frame; a cut stands out
   * against its neighbours. 0 turns the test off. @defaultValue 2
   */
  adaptiveRatio?: number;
  /** Frames on each side that form the neighbourhood of the adaptive test. @defaultValue 2 */
  window?: number;
  /** Shortest scene, in seconds; a cut closer than this to the previous one is ignored. @defaultValue 0.5 */
  minSceneSeconds?: number;
}

export const DEFAULT_CONTENT_THRESHOLD = 27;

/** Indices of the sampled frames that start a new scene. */
export function detectCutFrames(scores: ArrayLike<number>, options: SceneCutOptions): number[] {
  const threshold = options.threshold ?? DEFAULT_CONTENT_THRESHOLD;
  const ratio = options.adaptiveRatio ?? 2;
  const window = options.window ?? 2;
  const minGap = Math.max(1, Math.round((options.minSceneSeconds ?? 0.5) * options.fps));
  const cuts: number[] = [];
  let last = -minGap;
  for (let i = 1; i < scores.length; i++) {
    const score = scores[i]!;
    if (score < threshold || i - last < minGap) continue;
    if (ratio > 0) {
      let sum = 0;
      let count = 0;
      // Frame 0 has no predecessor and always scores 0: it is not a neighbour.
      for (let j = Math.max(1, i - window); j <= Math.min(scores.length - 1, i + window); j++) {
        if (j === i) continue;
        sum += scores[j]!;
        count++;
      }
      const neighbours = count ? sum / count : 0;
      if (score < ratio * Math.max(neighbours, 1)) continue;
    }
    cuts.push(i);
    last = i;
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
