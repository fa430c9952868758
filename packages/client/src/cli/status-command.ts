import type { Video } from '../types.js';
import { parseArgs } from './args.js';
import { apiClient, EXIT_FAILURE, EXIT_OK, type CliContext } from './cli-context.js';
import { formatBytes, formatSeconds, printable } from './format.js';
import { helpText } from './help.js';
import { renderTable } from './text-table.js';
import { UsageError } from './usage-error.js';

const SPEC = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

function mediaLine(video: Video): string {
  const media = video.metadata;
  if (!media) return '-';
  return [
    formatSeconds(media.durationSeconds),
    `${media.width}x${media.height}`,
    `${Number(media.fps.toFixed(2))} fps`,
    media.videoCodec ?? 'unknown codec',
    media.hasAudio ? 'audio' : 'no audio',
    formatBytes(media.sizeBytes),
  ].join(' · ');
}

export function describeVideo(video: Video): string {
  const fields: [string, string][] = [
    ['id', video.id],
    ['status', video.status === 'processing' || video.status === 'queued' ? `${video.status} ${video.progress}%` : video.status],
    ['title', video.title ?? '-'],
    ['source', video.source],
    ['created', video.createdAt],
    ['completed', video.completedAt ?? '-'],
    ['media', mediaLine(video)],
    ['scenes', String(video.scenes.length)],
    ['clips', video.clips ? String(video.clips.length) : '-'],
  ];
  if (video.error) fields.push(['error', video.error]);
  let text = `${fields.map(([name, value]) => `${name.padEnd(10)} ${printable(value)}`).join('\n')}\n`;
  if (video.steps.length) {
    text += `\n${renderTable(
      [{ header: 'STEP' }, { header: 'STATUS' }, { header: 'ATTEMPTS', align: 'right' }, { header: 'REASON' }],
      video.steps.map((step) => [step.name, step.status, String(step.attempts), step.reason ?? '']),
    )}`;
  }
  if (video.clips?.length) {
    text += `\n${renderTable(
      [
        { header: 'CLIP' },
        { header: 'FROM', align: 'right' },
        { header: 'TO', align: 'right' },
        { header: 'SCORE', align: 'right' },
        { header: 'ASPECT' },
        { header: 'URL' },
      ],
      video.clips.map((clip) => [
        clip.id,
        formatSeconds(clip.startSeconds),
        formatSeconds(clip.endSeconds),
        clip.score.toFixed(2),
        clip.aspect,
        clip.url ?? clip.status,
      ]),
    )}`;
  }
  return text;
}

/** `clipline status <id> [--json]` */
export async function statusCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { options, positionals } = parseArgs(argv, SPEC, 'status');
  if (options.help) {
    context.stdout.write(helpText('status'));
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError(`status needs exactly one video id, got ${positionals.length}`, 'status');
  const id = positionals[0]!.trim();
  // An empty id (`status "$ID"` with ID unset) would read `/v1/videos/`, the list, as if it were a video.
  if (id === '' || id === '.' || id === '..') throw new UsageError(`not a video id: ${JSON.stringify(positionals[0])}`, 'status');
  const video = await apiClient(context).getVideo(id, { signal: context.signal });
  context.stdout.write(options.json ? `${JSON.stringify(video, null, 2)}\n` : describeVideo(video));
  return video.status === 'failed' || video.status === 'cancelled' ? EXIT_FAILURE : EXIT_OK;
}
