/**
 * A clip's title, caption and hashtags as the chat model wrote them, made fit to store. A model
 * keeps to a JSON schema's shape but not always to its wording rules: a tag written `#self-care`,
 * a caption a sentence too long. Such a reply is cleaned, not refused: the call is paid for, and
 * refusing it failed the clip's captions (and the voice-over read from them) for good.
 */
import { z } from 'zod';

export const MAX_TITLE_CHARS = 80;
export const MAX_CAPTION_CHARS = 600;
export const MAX_HASHTAGS = 8;
const MAX_HASHTAG_CHARS = 40;

/** At most `limit` characters, cut after the last whole word that fits (with an ellipsis). */
function shortened(text: string, limit: number): string {
  const chars = [...text];
  if (chars.length <= limit) return text;
  const cut = chars.slice(0, limit - 1).join('');
  const lastSpace = cut.search(/\s\S*$/u);
  return `${(lastSpace > limit / 2 ? cut.slice(0, lastSpace) : cut).trimEnd()}…`;
}

/** `#self-care` → `#selfcare`: the letters, digits and underscores a tag may hold; empty and repeated tags dropped. */
function cleanHashtags(tags: readonly string[]): string[] {
  const seen = new Set<string>();
  const clean: string[] = [];
  for (const tag of tags) {
    const word = [...tag.normalize('NFC').replace(/[^\p{L}\p{M}\p{N}_]+/gu, '')].slice(0, MAX_HASHTAG_CHARS).join('');
    if (!word || seen.has(word.toLowerCase())) continue;
    seen.add(word.toLowerCase());
    clean.push(`#${word}`);
    if (clean.length === MAX_HASHTAGS) break;
  }
  return clean;
}

/** The reply's shape; its wording is then cleaned to what is stored. */
export const captionReply = z
  .object({
    title: z.string().trim().min(1, 'the title is empty').max(2000),
    caption: z.string().trim().min(1, 'the caption is empty').max(20_000),
    hashtags: z.array(z.string().max(2000)).max(100),
  })
  .transform(({ title, caption, hashtags }) => ({
    title: shortened(title.replace(/\s+/gu, ' '), MAX_TITLE_CHARS),
    caption: shortened(caption, MAX_CAPTION_CHARS),
    hashtags: cleanHashtags(hashtags),
  }));

/** What the model is asked for, limits included (the cleaning above is for when it strays). */
export const CAPTION_JSON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['title', 'caption', 'hashtags'],
  properties: {
    title: { type: 'string', description: `at most ${MAX_TITLE_CHARS} characters` },
    caption: { type: 'string', description: `one or two sentences, at most ${MAX_CAPTION_CHARS} characters` },
    hashtags: {
      type: 'array',
      items: { type: 'string', description: 'one word: letters, digits or underscores, no spaces or hyphens' },
      maxItems: 6,
    },
  },
};
