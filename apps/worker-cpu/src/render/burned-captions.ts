/**
 * Captions burned into a clip, as short-form clips carry them: a few words at a time, large and
 * outlined in the lower middle of the picture, the word being spoken highlighted. Written as an
 * ASS subtitle document in the clip's own pixel size, which ffmpeg's libass (`ass` filter) draws.
 */
import type { ClipAspect } from '@clipline/shared';

/** A spoken word with its time in the source, in seconds. */
export interface CaptionWord {
  startSeconds: number;
  endSeconds: number;
  text: string;
}

interface Layout {
  /** Font size as a share of the picture's height. */
  fontShare: number;
  /** Words shown together at most. */
  wordsPerLine: number;
  /** Distance of the text from the bottom, as a share of the height (clear of players' controls). */
  marginShare: number;
}

const LAYOUTS: Record<ClipAspect, Layout> = {
  '9:16': { fontShare: 0.05, wordsPerLine: 3, marginShare: 0.22 },
  '1:1': { fontShare: 0.065, wordsPerLine: 4, marginShare: 0.1 },
  '16:9': { fontShare: 0.07, wordsPerLine: 6, marginShare: 0.08 },
};
/** A line closes when the gap to the next word is longer than this (a pause), or the line is this long. */
const LINE_BREAK_GAP_SECONDS = 0.35;
const LONGEST_LINE_SECONDS = 2.5;
/** The last word of a line stays up this long after it is said, unless the next line comes sooner. */
const HOLD_SECONDS = 0.4;
/** Colours in ASS order (&HAABBGGRR): white text, yellow spoken word, black outline. */
const TEXT_COLOUR = '&H00FFFFFF';
const SPOKEN_COLOUR = '&H0000D7FF';
const OUTLINE_COLOUR = '&H00000000';

/** A line also closes after a word that ends a sentence, in any script (`.`, `?`, `。`, `।`, …). */
const SENTENCE_END = /[\p{Sentence_Terminal}…]["'”’»」』)\]]*$/u;
/** Scripts written without spaces between words: their words are joined without one. */
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3000-\u303f\uff00-\uffef]/u;

/**
 * The words to burn from a transcript's segments: the timed words where the transcript has them.
 * Only a transcript without any word timestamps has each segment's text spread evenly over it; in
 * one that has them, a segment without words of its own had them counted in a neighbour (a word
 * belongs to the segment holding its middle), and spreading its text again showed them twice.
 */
export function wordsToBurn(segments: readonly (CaptionWord & { words?: readonly CaptionWord[] | undefined })[]): CaptionWord[] {
  if (segments.some((segment) => segment.words?.length)) return segments.flatMap((segment) => segment.words ?? []);
  return segments.flatMap((segment) => {
    const words = segment.text.split(/\s+/).filter(Boolean);
    const step = (segment.endSeconds - segment.startSeconds) / Math.max(1, words.length);
    return words.map((text, index) => ({ text, startSeconds: segment.startSeconds + index * step, endSeconds: segment.startSeconds + (index + 1) * step }));
  });
}

/** A line's words as shown: spaced, except between words of scripts written without spaces. */
function lineText(words: readonly string[]): string {
  return words.reduce((text, word, index) => {
    if (index === 0) return word;
    const unspaced = UNSPACED.test(words[index - 1]!.replace(/\{[^}]*\}/g, '').at(-1) ?? '') && UNSPACED.test(word.replace(/\{[^}]*\}/g, '')[0] ?? '');
    return `${text}${unspaced ? '' : ' '}${word}`;
  }, '');
}

/** `h:mm:ss.cc`, the ASS time format. */
function assTime(seconds: number): string {
  const centis = Math.max(0, Math.round(seconds * 100));
  const h = Math.floor(centis / 360_000);
  const m = Math.floor(centis / 6000) % 60;
  const s = Math.floor(centis / 100) % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(centis % 100).padStart(2, '0')}`;
}

/** Text safe inside an ASS event: no override blocks, no line breaks. */
function assText(text: string): string {
  return text
    .replace(/[{}\\]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Words said inside the clip, shifted to clip time, grouped into lines. */
function linesOf(words: readonly CaptionWord[], from: number, to: number, wordsPerLine: number): CaptionWord[][] {
  const inside = words
    .filter((word) => word.endSeconds > from && word.startSeconds < to && assText(word.text))
    .map((word) => ({ startSeconds: Math.max(0, word.startSeconds - from), endSeconds: Math.min(to, word.endSeconds) - from, text: assText(word.text) }))
    .sort((a, b) => a.startSeconds - b.startSeconds);
  const lines: CaptionWord[][] = [];
  let line: CaptionWord[] = [];
  for (const word of inside) {
    const previous = line.at(-1);
    const breaks =
      previous &&
      (line.length >= wordsPerLine ||
        word.startSeconds - previous.endSeconds > LINE_BREAK_GAP_SECONDS ||
        word.endSeconds - line[0]!.startSeconds > LONGEST_LINE_SECONDS ||
        SENTENCE_END.test(previous.text));
    if (breaks) {
      lines.push(line);
      line = [];
    }
    line.push(word);
  }
  if (line.length) lines.push(line);
  return lines;
}

/**
 * The ASS document for one clip, or null when nothing is said in it. One event per word: the
 * whole line, with that word in the highlight colour, from its start until the next word's.
 */
export function captionDocument(
  words: readonly CaptionWord[],
  clip: { startSeconds: number; endSeconds: number },
  picture: { width: number; height: number; aspect: ClipAspect },
): string | null {
  const layout = LAYOUTS[picture.aspect];
  const duration = clip.endSeconds - clip.startSeconds;
  const lines = linesOf(words, clip.startSeconds, clip.endSeconds, layout.wordsPerLine);
  if (lines.length === 0) return null;
  const fontSize = Math.max(10, Math.round(picture.height * layout.fontShare));
  const outline = Math.max(1, Math.round(fontSize / 12));
  const margin = Math.round(picture.height * layout.marginShare);
  const side = Math.round(picture.width * 0.06);
  const events: string[] = [];
  lines.forEach((line, index) => {
    const nextLineStart = lines[index + 1]?.[0]?.startSeconds ?? duration;
    line.forEach((word, position) => {
      const until = line[position + 1]?.startSeconds ?? Math.min(nextLineStart, word.endSeconds + HOLD_SECONDS, duration);
      // A word said at the same instant as the next one gets no event of its own: two events at
      // once are drawn stacked, one above the other.
      if (position + 1 < line.length && until <= word.startSeconds) return;
      const text = lineText(line.map((other, k) => (k === position ? `{\\c${SPOKEN_COLOUR}&}${other.text}{\\c${TEXT_COLOUR}&}` : other.text)));
      events.push(`Dialogue: 0,${assTime(word.startSeconds)},${assTime(Math.max(until, word.startSeconds + 0.05))},Caption,,0,0,0,,${text}`);
    });
  });
  return [
    '[Script Info]',
    'ScriptType: v4.00+',
    `PlayResX: ${picture.width}`,
    `PlayResY: ${picture.height}`,
    'WrapStyle: 0',
    'ScaledBorderAndShadow: yes',
    '',
    '[V4+ Styles]',
    'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding',
    `Style: Caption,DejaVu Sans,${fontSize},${TEXT_COLOUR},${TEXT_COLOUR},${OUTLINE_COLOUR},&H80000000,-1,0,0,0,100,100,0,0,1,${outline},0,2,${side},${side},${margin},1`,
    '',
    '[Events]',
    'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text',
    ...events,
    '',
  ].join('\n');
}

/** The `ass` filter for a document on disk; the path must be plain (a temporary file's is). */
export function assFilter(file: string): string {
  // Filter graphs give ':', ',', quotes and backslashes meanings of their own.
  if (!/^[\w/.-]+$/.test(file)) throw new Error(`the captions file path ${JSON.stringify(file)} cannot be given to ffmpeg's ass filter`);
  return `ass=filename=${file}`;
}
