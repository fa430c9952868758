/** Chat model replies (captions, clip ranking): kept when they stray from the wording rules, cleaned to what is stored. */
import { captionReply, MAX_CAPTION_CHARS, MAX_HASHTAGS, MAX_TITLE_CHARS } from '../src/ai/caption-reply.js';

describe('a caption reply', () => {
  it('keeps tags a model writes with hyphens, spaces or no #, cleaned, and drops empty and repeated ones', () => {
    const reply = captionReply.parse({
      title: 'Morning routine',
      caption: 'Start slow.',
      hashtags: ['#self-care', 'morning routine', 'Wellness', '#wellness', '#', '日本語', 'café', '#!!!'],
    });
    expect(reply.hashtags).toEqual(['#selfcare', '#morningroutine', '#Wellness', '#日本語', '#café']);
  });

  it('shortens a long title or caption at a word instead of refusing the reply', () => {
    const caption = 'word '.repeat(400).trim();
    const reply = captionReply.parse({ title: `A ${'very '.repeat(40)}long title`, caption, hashtags: Array.from({ length: 30 }, (_, i) => `tag${i}`) });
    expect([...reply.title].length).toBeLessThanOrEqual(MAX_TITLE_CHARS);
    expect([...reply.caption].length).toBeLessThanOrEqual(MAX_CAPTION_CHARS);
    expect(reply.caption.endsWith('word…')).toBe(true);
    expect(reply.title).toMatch(/^A very very .* very…$/);
    expect(reply.hashtags).toHaveLength(MAX_HASHTAGS);
  });

  it('leaves a reply within the rules as it is', () => {
    expect(captionReply.parse({ title: 'Title', caption: 'A caption.', hashtags: ['#one', 'two'] })).toEqual({
      title: 'Title',
      caption: 'A caption.',
      hashtags: ['#one', '#two'],
    });
  });

  it('refuses a reply without the shape: an empty title, a missing caption, tags that are not a list', () => {
    for (const bad of [
      { title: ' ', caption: 'x', hashtags: [] },
      { title: 'x', hashtags: [] },
      { title: 'x', caption: 'y', hashtags: 'a b' },
    ]) {
      expect(captionReply.safeParse(bad).success).toBe(false);
    }
  });
});

describe('a clip ranking reply', () => {
  it('keeps a score whose reason runs past the length shown (shortened where it is shown), and refuses an empty one', async () => {
    const { rankingSchema } = await import('../src/pipeline/clip-selection.js');
    expect(rankingSchema.safeParse({ scores: [{ index: 0, score: 70, reason: 'a hook that '.repeat(30) }] }).success).toBe(true);
    expect(rankingSchema.safeParse({ scores: [{ index: 0, score: 70, reason: '  ' }] }).success).toBe(false);
  });
});

describe("a clip's reasons in the prompts made of them", () => {
  it('leave out the notes on how it was ranked, a provider error among them', async () => {
    const { describingReasons } = await import('../src/pipeline/clip-selection.js');
    const reasons = [
      'content 80/100: a clear hook',
      'strong motion',
      'ranked on picture and sound only: content ranking unavailable (openai answered 502: <html>Bad gateway</html>)',
      'not scored by content',
    ];
    expect(describingReasons(reasons)).toEqual(['content 80/100: a clear hook', 'strong motion']);
  });
});
