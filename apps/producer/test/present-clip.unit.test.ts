import type { ClipView } from '@clipline/shared';
import { presentClip } from '../src/routes/route-helpers.js';

const VIDEO = '11111111-1111-4111-8111-111111111111';

function clip(status: ClipView['status']): ClipView {
  return {
    id: '22222222-2222-4222-8222-222222222222',
    videoId: VIDEO,
    clipIndex: 0,
    startSeconds: 1,
    endSeconds: 6,
    score: 50,
    reasons: [],
    aspect: '9:16',
    status,
    storageKey: status === 'rendered' ? `videos/${VIDEO}/clips/0.mp4` : null,
    thumbnailKey: status === 'rendered' ? `videos/${VIDEO}/clips/0.jpg` : null,
    width: null,
    height: null,
    durationSeconds: null,
    error: status === 'failed' ? 'broken' : null,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('a clip as the API shows it', () => {
  const extras = { title: 't', caption: 'c', hashtags: [], voiceoverKey: `videos/${VIDEO}/clips/0-voiceover.mp3`, thumbnailKey: null };

  it('links its files, the voice-over included, once rendered', () => {
    const shown = presentClip(VIDEO, clip('rendered'), extras as never);
    expect(shown.url).toMatch(/\/file$/);
    expect(shown.voiceoverUrl).toMatch(/\/voiceover$/);
  });

  it.each(['failed', 'pending'] as const)('links none of them while %s, as the file routes answer 409 then', (status) => {
    const shown = presentClip(VIDEO, clip(status), extras as never);
    expect({ url: shown.url, thumbnailUrl: shown.thumbnailUrl, voiceoverUrl: shown.voiceoverUrl }).toEqual({
      url: null,
      thumbnailUrl: null,
      voiceoverUrl: null,
    });
  });
});
