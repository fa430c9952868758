/** The clipline image as infra/Dockerfile builds it from this repository, interpreted without Docker. */
import path from 'node:path';
import { buildContext } from './build-context.js';
import { existsIn, interpretDockerfile, type Stage } from './dockerfile.js';
import { readText, ROOT, tsProjects } from './workspace.js';

/** What the project's RUN steps leave behind (paths relative to the stage's WORKDIR). */
export function projectRunModel(command: string, stage: Stage): string[] {
  if (/\bnpm ci\b/.test(command)) return ['node_modules'];
  if (/\bnpm run build\b/.test(command)) {
    return tsProjects()
      .filter((project) => project.outDir && existsIn(stage, path.posix.join(stage.workdir, project.dir, 'tsconfig.json')))
      .map((project) => project.outDir!);
  }
  // infra/ffmpeg/build.sh <prefix> installs bin/ffmpeg, bin/ffprobe and runtime-packages there.
  const ffmpeg = /\bbuild-ffmpeg\.sh\s+(\S+)/.exec(command);
  if (ffmpeg) return [ffmpeg[1]!];
  const made = /\bmkdir -p "?([^"\s&]+)"?/.exec(command);
  return made ? [made[1]!] : [];
}

/** Every stage of infra/Dockerfile over this repository's build context. */
export function imageStages(): Map<string, Stage> {
  return interpretDockerfile(readText('infra/Dockerfile'), { files: buildContext(ROOT).files }, projectRunModel);
}

/** The final stage of infra/Dockerfile: what a container of the image holds. */
export function runtimeImage(): Stage {
  return [...imageStages().values()].at(-1)!;
}
