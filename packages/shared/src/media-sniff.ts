/** Bytes of a file's head that {@link sniffContainer} needs. */
export const SNIFF_BYTES = 512;

export type SniffResult = { video: true; container: string } | { video: false; reason: string };

const ascii = (head: Uint8Array, offset: number, length: number) => String.fromCharCode(...head.subarray(offset, offset + length));

/**
 * Recognises video containers from their first bytes, so a text file renamed `.mp4` or an
 * HTML error page served as a download is refused before anything decodes it.
 */
export function sniffContainer(head: Uint8Array): SniffResult {
  if (head.length === 0) return { video: false, reason: 'the file is empty (0 bytes)' };
  if (head.length < 12) return { video: false, reason: `the file is too short to be a video (${head.length} bytes)` };
  const box = ascii(head, 4, 4);
  if (['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].includes(box)) return { video: true, container: 'mp4/mov' };
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return { video: true, container: 'matroska/webm' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'AVI ') return { video: true, container: 'avi' };
  if (ascii(head, 0, 4) === 'OggS') return { video: true, container: 'ogg' };
  if (ascii(head, 0, 3) === 'FLV') return { video: true, container: 'flv' };
  if (ascii(head, 0, 9) === 'YUV4MPEG2') return { video: true, container: 'y4m' };
  if (head[0] === 0x00 && head[1] === 0x00 && head[2] === 0x01 && (head[3] === 0xba || head[3] === 0xb3)) return { video: true, container: 'mpeg-ps' };
  if (head[0] === 0x30 && head[1] === 0x26 && head[2] === 0xb2 && head[3] === 0x75) return { video: true, container: 'asf/wmv' };
  if (head[0] === 0x47 && (head.length < 189 || head[188] === 0x47)) return { video: true, container: 'mpeg-ts' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'WAVE') return { video: false, reason: 'the file is WAV audio, not a video' };
  if (ascii(head, 0, 3) === 'ID3' || (head[0] === 0xff && ((head[1] ?? 0) & 0xe0) === 0xe0))
    return { video: false, reason: 'the file is MP3 audio, not a video' };
  if (ascii(head, 0, 4) === 'fLaC') return { video: false, reason: 'the file is FLAC audio, not a video' };
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(0, 64)).trimStart().toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return { video: false, reason: 'the content is an HTML page, not a video' };
  const printable = head.subarray(0, Math.min(head.length, 256)).every((byte) => byte === 9 || byte === 10 || byte === 13 || (byte >= 32 && byte < 127));
  if (printable) return { video: false, reason: 'the content is plain text, not a video' };
  return { video: false, reason: 'the content is not a recognised video container' };
}
