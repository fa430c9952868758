/**
 * The picture size a viewer sees: the picture turned as the player turns it, then its width
 * scaled by the pixels' aspect so they come out square (an HDV 1440x1080 with 4:3 pixels is a
 * 1920x1080 picture, a DV 720x480 with 8:9 pixels a 640x480 one), as ffmpeg's
 * `scale=iw*sar:ih` after its own rotation gives it, made even. Analysis measures and rendering
 * crops in this size; rendering scales the decoded frames to it first (see `reframeFilter`), and
 * the sampler's ffmpeg computes the same size itself ({@link sampledHeightExpression}).
 */
export function displayedSize(
  stored: { width: number; height: number },
  pixelAspect: readonly [number, number],
  rotation: number,
): { width: number; height: number } {
  const quarterTurn = rotation === 90 || rotation === 270;
  const [across, down] = quarterTurn ? [pixelAspect[1], pixelAspect[0]] : pixelAspect;
  const turned = quarterTurn ? { width: stored.height, height: stored.width } : stored;
  if (!(across > 0 && down > 0) || across === down) return turned;
  // `iw*sar` in ffmpeg's order of operations, so both sides round alike.
  return { width: Math.max(2, Math.round((turned.width * (across / down)) / 2) * 2), height: turned.height };
}

/**
 * The height `sampleSize(displayed.width, displayed.height, width)` gives, as an ffmpeg `scale`
 * expression of the decoded frame (its `iw`, `ih` and `sar` are those of the turned picture):
 * sampling starts before the source's facts are known and must produce frames of the size
 * analysis then expects. For square pixels it is what `-2` gives.
 */
export function sampledHeightExpression(width: number): string {
  const shown = 'if(eq(sar\\,1)\\,iw\\,max(2\\,round(iw*sar/2)*2))';
  return `max(2\\,round(${width}*ih/${shown}/2)*2)`;
}

/** ffprobe's `sample_aspect_ratio` ("4:3"; "0:1" or "N/A" when unstated) as [width, height]. */
export function parsedPixelAspect(text: string | undefined): readonly [number, number] {
  const match = /^(\d+):(\d+)$/.exec(text ?? '');
  const across = Number(match?.[1]);
  const down = Number(match?.[2]);
  return across > 0 && down > 0 ? [across, down] : [1, 1];
}
