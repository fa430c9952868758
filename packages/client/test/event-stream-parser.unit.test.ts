import fc from 'fast-check';
import { EventStreamParser, type ServerSentEvent } from '../src/event-stream-parser.js';

function parseAll(chunks: readonly string[]): { events: ServerSentEvent[]; parser: EventStreamParser } {
  const parser = new EventStreamParser();
  const events = chunks.flatMap((chunk) => parser.feed(chunk));
  return { events, parser };
}

describe('EventStreamParser', () => {
  it('reads id, event and JSON data, and joins multi-line data with newlines', () => {
    const { events, parser } = parseAll([
      'retry: 2000\n\nid: 7\nevent: progress\ndata: {"a":1}\n\n',
      'id: 8\nevent: completed\ndata: line one\ndata: line two\n\n',
    ]);
    expect(events).toEqual([
      { type: 'progress', data: '{"a":1}', id: '7' },
      { type: 'completed', data: 'line one\nline two', id: '8' },
    ]);
    expect(parser.reconnectionDelayMs).toBe(2000);
    expect(parser.lastEventId).toBe('8');
  });

  it('skips comments (heartbeats), unknown fields and events without data; defaults the type to message', () => {
    const { events, parser } = parseAll([': keep-alive\n\nfoo: bar\nevent: ignored\n\nid: 3\n\ndata\n\ndata:no-space\n\n']);
    expect(events).toEqual([
      { type: 'message', data: '', id: '3' },
      { type: 'message', data: 'no-space', id: '3' },
    ]);
    // An id without data still moves the resume point, as the format says.
    expect(parser.lastEventId).toBe('3');
  });

  it('ignores ids containing NUL and retry values that are not all digits', () => {
    const { events, parser } = parseAll(['id: 1\nretry: 500\n\nid: 2\u00003\nretry: 1e3\ndata: x\n\n']);
    expect(events).toEqual([{ type: 'message', data: 'x', id: '1' }]);
    expect(parser.reconnectionDelayMs).toBe(500);
  });

  it('strips a leading byte-order mark only at the very start', () => {
    const { events } = parseAll(['\ufeffdata: a\n\n', '\ufeffdata: b\n\n']);
    expect(events).toEqual([{ type: 'message', data: 'a', id: '' }]);
  });

  it('does not dispatch an event whose blank line has not arrived yet', () => {
    const parser = new EventStreamParser();
    expect(parser.feed('id: 1\ndata: half')).toEqual([]);
    expect(parser.feed('\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual([{ type: 'message', data: 'half', id: '1' }]);
  });

  it('treats a CRLF split across two chunks as one line end, and dispatches on a lone CR without waiting for more', () => {
    const parser = new EventStreamParser();
    expect(parser.feed('data: a\r')).toEqual([]);
    // The LF completes the CRLF above; the CR after it is the blank line that dispatches.
    expect(parser.feed('\n\r')).toEqual([{ type: 'message', data: 'a', id: '' }]);
    expect(parser.feed('\ndata: b\r\rdata: c\n\n')).toEqual([
      { type: 'message', data: 'b', id: '' },
      { type: 'message', data: 'c', id: '' },
    ]);
  });

  it('gives the same events however the stream is cut into chunks and whichever line ends it uses', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '{', '"', 'é', '😀', '1') });
    const event = fc.record({
      type: fc.constantFrom('progress', 'completed', 'message'),
      id: fc.stringMatching(/^[0-9]{1,4}$/),
      lines: fc.array(field, { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(
        fc.array(event, { minLength: 1, maxLength: 6 }),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.array(fc.nat(), { maxLength: 8 }),
        (events, eol, cuts) => {
          const text = events
            .map((item) => [`id: ${item.id}`, `event: ${item.type}`, ...item.lines.map((line) => `data: ${line}`), ': comment'].join(eol) + eol + eol)
            .join('');
          const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...points].map((start, index) => text.slice(start, [...points, text.length][index]));
          const { events: parsed } = parseAll(chunks);
          expect(parsed).toEqual(events.map((item) => ({ type: item.type, id: item.id, data: item.lines.join('\n') })));
        },
      ),
      { numRuns: 300 },
    );
  });
});
