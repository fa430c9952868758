import { PermanentJobError, type ClipAspect } from '@clipline/shared';

/** Width:height of each aspect a clip can be rendered in. */
const ASPECT_RATIOS: Record<ClipAspect, readonly [number, number]> = { '9:16': [9, 16], '1:1': [1, 1], '16:9': [16, 9] };

export interface CropGeometry {
  /** Size of the crop window (and of the rendered clip), in source pixels. */
  width: number;
  height: number;
  /** Room the window has to move along each axis, in source pixels (0: the window spans that axis). */
  slackX: number;
  slackY: number;
}

/**
 * The largest window of exactly the requested aspect that fits the (display-oriented) source,
 * with even sides as 4:2:0 video needs. A source already in that aspect is kept whole, so a
 * 16:9 clip of a 16:9 video is the picture unchanged.
 */
export function cropGeometry(sourceWidth: number, sourceHeight: number, aspect: ClipAspect): CropGeometry {
  const [across, down] = ASPECT_RATIOS[aspect];
  let scale = Math.floor(Math.min(sourceWidth / across, sourceHeight / down));
  // Both sides must be even: with an odd side of the ratio, only an even scale gives that.
  if ((across % 2 === 1 || down % 2 === 1) && scale % 2 === 1) scale--;
  if (scale < 1) throw new PermanentJobError(`the video (${sourceWidth}x${sourceHeight}) is too small for a ${aspect} clip`);
  const width = across * scale;
  const height = down * scale;
  return { width, height, slackX: sourceWidth - width, slackY: sourceHeight - height };
}
