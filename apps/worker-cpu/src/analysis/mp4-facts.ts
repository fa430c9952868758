/**
 * A source's facts read from its MP4 index without starting a process, as ffprobe states them,
 * so that analysing an MP4 starts one ffmpeg and no ffprobe. Anything the index leaves in doubt
 * (no movie duration, a codec not named here, a track without a picture size, pixels whose
 * aspect only a stream header other than H.264's states) is left to ffprobe. The workers read it
 * in a pool thread (`CpuPool#mp4Facts`): a long source's index lists hundreds of thousands of
 * chunks, tens of milliseconds of work.
 */
import { readMp4Movie, type Mp4Track } from '@clipline/shared/mp4';
import type { ProbeResult } from './ffmpeg.js';
import { displayedSize } from './picture-size.js';

/** What ffprobe names a file of this family. */
const MP4_FORMAT_NAME = 'mov,mp4,m4a,3gp,3g2,mj2';

/** The sample description codes of the codecs analysis meets most, by ffmpeg's codec name. */
const VIDEO_CODECS: Readonly<Record<string, string>> = { avc1: 'h264', avc3: 'h264', hvc1: 'hevc', hev1: 'hevc', av01: 'av1', vp09: 'vp9' };

/**
 * ffmpeg's average frame rate of a track: its samples over the sum of their durations, the
 * fraction reduced, here rounded to the thousandth as the probe's rate is.
 */
function averageRate(track: Mp4Track): number {
  if (track.samplesDuration <= 0 || track.sampleCount <= 0) return 0;
  return Math.round(((track.timescale * track.sampleCount) / track.samplesDuration) * 1000) / 1000;
}

/** The facts of `file` when it is an MP4 whose index says all of them, else undefined. */
export async function mp4Facts(file: string): Promise<ProbeResult | undefined> {
  const movie = await readMp4Movie(file);
  if (!movie || movie.timescale <= 0 || movie.duration <= 0) return undefined;
  const video = movie.tracks.find((track) => track.handler === 'vide');
  const videoCodec = video ? VIDEO_CODECS[video.codecTag] : undefined;
  if (!video || !videoCodec || !video.width || !video.height || !video.pixelAspect || video.sampleCount === 0) return undefined;
  const fps = averageRate(video);
  if (!fps) return undefined;
  return {
    // ffmpeg keeps the movie's duration in microseconds, rounded.
    durationSeconds: Math.round((movie.duration * 1_000_000) / movie.timescale) / 1_000_000,
    ...displayedSize({ width: video.width, height: video.height }, video.pixelAspect, video.rotation),
    decodedPixels: video.width * video.height,
    fps,
    hasAudio: movie.tracks.some((track) => track.handler === 'soun'),
    videoCodec,
    rotation: video.rotation,
    formatName: MP4_FORMAT_NAME,
  };
}
