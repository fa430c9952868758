import { isAllowedFilePath, parseSource, sniffContainer } from '@clipline/shared';

describe('parseSource', () => {
  it.each([
    ['/videos/a.mp4', 'file'],
    ['file:///videos/a%20b.mp4', 'file'],
    ['https://cdn.example.com/a.mp4', 'http'],
    ['http://127.0.0.1:8080/a.webm', 'http'],
    // WHATWG URLs: these are http URLs to 127.0.0.1 too, and are judged as such.
    ['http:/127.0.0.1/a.mp4', 'http'],
    ['http:127.0.0.1/a.mp4', 'http'],
  ])('accepts %s as %s', (source, kind) => {
    const parsed = parseSource(source);
    expect(parsed.ok && parsed.source.kind).toBe(kind);
  });

  it('decodes file URLs', () => {
    const parsed = parseSource('file:///videos/a%20b.mp4');
    expect(parsed.ok && parsed.source.kind === 'file' && parsed.source.path).toBe('/videos/a b.mp4');
  });

  it.each([
    ['', /empty/],
    ['videos/a.mp4', /absolute file path/],
    ['ftp://host/a.mp4', /scheme "ftp" is not supported/],
    ['https://user:pw@host/a.mp4', /credentials/],
    ['/a\u0000b', /control characters/],
    ['file:///tmp/a%00.mp4', /^source file path contains control characters$/],
    ['file:///tmp/a%0a.mp4', /^source file path contains control characters$/],
    ['http://', /not a valid URL/],
  ])('refuses %j', (source, reason) => {
    const parsed = parseSource(source);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('isAllowedFilePath', () => {
  it('allows paths under a root and refuses siblings and escapes', () => {
    expect(isAllowedFilePath('/srv/media/a.mp4', ['/srv/media'])).toBe(true);
    expect(isAllowedFilePath('/srv/media-other/a.mp4', ['/srv/media'])).toBe(false);
    expect(isAllowedFilePath('/srv/media/../etc/passwd', ['/srv/media'])).toBe(false);
    expect(isAllowedFilePath('/anything', 'any')).toBe(true);
  });
});

describe('sniffContainer', () => {
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));

  it('recognises video containers', () => {
    expect(sniffContainer(bytes([0, 0, 0, 0x20], 'ftypisom', [0, 0, 0, 0]))).toEqual({ video: true, container: 'mp4/mov' });
    expect(sniffContainer(bytes([0x1a, 0x45, 0xdf, 0xa3], 'xxxxxxxxxxxx'))).toMatchObject({ video: true, container: 'matroska/webm' });
    expect(sniffContainer(bytes('RIFF', [1, 2, 3, 4], 'AVI LIST'))).toMatchObject({ video: true, container: 'avi' });
  });

  it('explains what the content is when it is not a video', () => {
    expect(sniffContainer(new Uint8Array())).toEqual({ video: false, reason: 'the file is empty (0 bytes)' });
    expect(sniffContainer(bytes('this is a plain text file, renamed to look like a video'))).toMatchObject({ reason: /plain text/ });
    expect(sniffContainer(bytes('<!DOCTYPE html><html><body>404</body></html>'))).toMatchObject({ reason: /HTML page/ });
    expect(sniffContainer(bytes('RIFF', [1, 2, 3, 4], 'WAVEfmt '))).toMatchObject({ reason: /WAV audio/ });
    expect(sniffContainer(bytes([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]))).toMatchObject({
      reason: /not a recognised video container/,
    });
  });
});
