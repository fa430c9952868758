/**
 * Replays a Dockerfile's stages on this machine, each in a directory of its own standing for its
 * WORKDIR: the stage it starts from copied in, then its COPY steps (sources from the build context
 * as .dockerignore leaves it, or from an earlier stage's directory) and its RUN steps, run with
 * the stage's environment. Steps that install system packages or write outside the WORKDIR are
 * skipped: this machine has the toolchain, and the test looks at the application tree only.
 */
import { execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CopyStep, Stage } from './dockerfile.js';
import { ROOT } from './workspace.js';

export interface Replay {
  /** The directory of a stage, replayed on first use. */
  dirOf(stage: string): string;
  /** Commands skipped, each with its stage. */
  skipped: string[];
  /** Removes the directories of the stages replayed so far. */
  cleanup(): void;
}

const SKIPPED = /^(apt-get|mkdir -p "?\/)/;

function copyStep(step: CopyStep, stage: Stage, dir: string, context: ReadonlySet<string>, replay: Replay): void {
  const destination = path.join(dir, path.posix.relative(stage.workdir, path.posix.resolve(stage.workdir, step.destination)));
  const intoDirectory = step.destination.endsWith('/') || step.sources.length > 1;
  for (const source of step.sources) {
    if (step.from !== undefined) {
      const from = replay.dirOf(step.from);
      cpSync(path.join(from, path.posix.relative('/app', path.posix.resolve('/', source))), destination, { recursive: true, verbatimSymlinks: true });
      continue;
    }
    const root = path.posix.normalize(source).replace(/\/$/, '');
    const files = [...context].filter((file) => root === '.' || file === root || file.startsWith(`${root}/`));
    for (const file of files) {
      const below = file === root ? (intoDirectory ? path.posix.basename(file) : '') : path.posix.relative(root === '.' ? '' : root, file);
      const target = below ? path.join(destination, below) : destination;
      mkdirSync(path.dirname(target), { recursive: true });
      cpSync(path.join(ROOT, file), target);
    }
  }
}

export function replayStages(stages: Map<string, Stage>, context: ReadonlySet<string>): Replay {
  const dirs = new Map<string, string>();
  const replay: Replay = {
    skipped: [],
    cleanup() {
      for (const dir of dirs.values()) rmSync(dir, { recursive: true, force: true });
      dirs.clear();
    },
    dirOf(name) {
      const known = dirs.get(name);
      if (known) return known;
      const stage = stages.get(name);
      if (!stage) throw new Error(`no stage ${name}`);
      if (stage.workdir !== '/app') throw new Error(`stage ${name} works in ${stage.workdir}; only /app is replayed`);
      const dir = mkdtempSync(path.join(os.tmpdir(), `clipline-image-${name}-`));
      if (stages.has(stage.from)) cpSync(replay.dirOf(stage.from), dir, { recursive: true, verbatimSymlinks: true });
      for (const step of stage.steps) {
        if ('copy' in step) {
          copyStep(step.copy, stage, dir, context, replay);
        } else if (SKIPPED.test(step.run.command)) {
          replay.skipped.push(`${name}: ${step.run.command}`);
        } else {
          execSync(step.run.command, { cwd: dir, shell: '/bin/bash', stdio: 'pipe', env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), ...stage.env } });
        }
      }
      dirs.set(name, dir);
      return dir;
    },
  };
  return replay;
}

export function existsInReplay(dir: string, absolute: string): boolean {
  return existsSync(path.join(dir, path.posix.relative('/app', absolute)));
}
