/**
 * The simulated model's judgement of clip candidates (a `clip_ranking` JSON-schema request):
 * scores that follow from each candidate's words alone, so the same text always scores the
 * same. More complete sentences and more words score higher, no speech scores low, and a
 * hash of the text adds the spread a real model's taste would.
 */

/** The JSON-schema name clipline's ranking request uses. */
export const CLIP_RANKING_SCHEMA = 'clip_ranking';

function textHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

function judge(text: string): { score: number; reason: string } {
  const words = text.split(/\s+/).filter((word) => /\p{L}/u.test(word));
  if (words.length === 0) return { score: 5, reason: 'no speech: nothing to hook or pay off' };
  const sentences = (text.match(/[.!?](\s|$)/g) ?? []).length;
  const spread = textHash(text) % 25;
  const score = Math.max(0, Math.min(100, Math.round(15 + Math.min(35, words.length * 1.2) + Math.min(20, sentences * 7) + spread)));
  const hook = spread >= 12 ? 'strong opening line' : 'slow opening';
  const standalone = sentences >= 2 ? `${sentences} complete sentences stand alone` : sentences === 1 ? 'one complete sentence' : 'an unfinished thought';
  return { score, reason: `hook: ${hook}; ${standalone}; payoff: ${words.length >= 15 ? 'lands' : 'thin'}` };
}

/** The reply content: one score per `Candidate N:` block of the prompt. */
export function clipRankingReply(prompt: string): string {
  const scores = [...prompt.matchAll(/Candidate (\d+):\n([\s\S]*?)(?=\n\nCandidate \d+:|$)/g)].map(([, index, text]) => ({
    index: Number(index),
    ...judge((text ?? '').trim() === '(no speech)' ? '' : (text ?? '')),
  }));
  return JSON.stringify({ scores });
}
