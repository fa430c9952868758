/**
 * Reads a Dockerfile the way a builder does, without a Docker engine: instructions (with line
 * continuations and comments removed, `${ARG}` substituted), grouped into stages, and each
 * stage's filesystem as the instructions leave it. COPY sources are resolved against the build
 * context or the stage named by --from; RUN steps are modelled by what they leave behind
 * (node_modules from `npm ci`, each project's outDir from `npm run build`), so a later
 * `COPY --from` can be checked against them.
 */
import path from 'node:path';

export interface Instruction {
  keyword: string;
  /** The instruction's text after the keyword, continuations joined. */
  text: string;
  line: number;
}

/** Where a file of a stage comes from. */
export interface StagedFile {
  /** `context` or the stage it was copied from. */
  origin: string;
  /** Path in the context (origin `context`) or absolute path in the origin stage. */
  source: string;
}

export interface RunStep {
  command: string;
  line: number;
  /** The stage's files (absolute paths) when the step runs. */
  files: ReadonlySet<string>;
}

export interface Stage {
  name: string;
  /** A stage name or an image reference. */
  from: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  files: Map<string, StagedFile>;
  /** Directories created by RUN steps (absolute paths), e.g. /app/node_modules, /app/apps/producer/dist. */
  produced: Set<string>;
  runs: RunStep[];
  copies: CopyStep[];
  /** This stage's own COPY and RUN steps in order (not those of the stage it starts from). */
  steps: ({ copy: CopyStep } | { run: RunStep })[];
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
}

export interface CopyStep {
  from: string | undefined;
  sources: string[];
  destination: string;
  line: number;
}

/** What a RUN step leaves behind, given the stage's files before it. */
export type RunModel = (command: string, stage: Stage) => string[];

export function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  let pending: { text: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines are dropped even inside a continued instruction, as the builder does.
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continued = trimmed.endsWith('\\');
    const content = continued ? trimmed.slice(0, -1) : trimmed;
    pending = pending ? { text: `${pending.text} ${content}`, line: pending.line } : { text: content, line: index + 1 };
    if (continued) return;
    const match = /^(\S+)\s*(.*)$/s.exec(pending.text.trim());
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), text: match[2]!.replace(/\s+/g, ' ').trim(), line: pending.line });
    pending = undefined;
  });
  return instructions;
}

/** `["a", "b"]` (exec form) or `a b` (split on spaces). */
export function words(text: string): string[] {
  if (text.startsWith('[')) return JSON.parse(text) as string[];
  return text.split(' ').filter((word) => word.length > 0);
}

function substitute(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => args[(braced ?? bare)!] ?? whole);
}

function parseFlags(parts: string[]): { flags: Record<string, string>; rest: string[] } {
  const flags: Record<string, string> = {};
  let index = 0;
  for (; index < parts.length && parts[index]!.startsWith('--'); index++) {
    const [name, value = ''] = parts[index]!.slice(2).split('=');
    flags[name!] = value;
  }
  return { flags, rest: parts.slice(index) };
}

function parseEnv(text: string, env: Record<string, string>): void {
  for (const match of text.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
}

function newStage(name: string, from: string, base: Stage | undefined): Stage {
  return {
    name,
    from,
    workdir: base?.workdir ?? '/',
    env: { ...(base?.env ?? {}) },
    user: base?.user,
    files: new Map(base?.files ?? []),
    produced: new Set(base?.produced ?? []),
    runs: [],
    copies: [],
    steps: [],
    cmd: base?.cmd,
    entrypoint: base?.entrypoint,
  };
}

/** The build context: its files, by path relative to its root. */
export interface BuildContext {
  files: ReadonlySet<string>;
}

function absolute(stage: Stage, target: string): string {
  return path.posix.resolve(stage.workdir, target);
}

/** Files (and produced directories) a COPY source names in its origin, keyed by their path below the source. */
function resolveSource(source: string, origin: Stage | BuildContext): { files: Map<string, string>; produced: string[] } {
  if (source.includes('*')) throw new Error(`wildcard COPY sources are not modelled: ${source}`);
  const files = new Map<string, string>();
  const produced: string[] = [];
  if ('produced' in origin) {
    const root = path.posix.resolve('/', source);
    for (const file of origin.files.keys()) if (file === root || file.startsWith(`${root}/`)) files.set(path.posix.relative(root, file), file);
    for (const dir of origin.produced) {
      if (dir === root || dir.startsWith(`${root}/`)) produced.push(path.posix.relative(root, dir));
      else if (root.startsWith(`${dir}/`)) produced.push('');
    }
    return { files, produced };
  }
  const root = path.posix.normalize(source).replace(/\/$/, '');
  for (const file of origin.files) {
    if (root === '.' || file === root || file.startsWith(`${root}/`)) files.set(root === '.' ? file : path.posix.relative(root, file), file);
  }
  return { files, produced };
}

function applyCopy(stage: Stage, step: CopyStep, stages: Map<string, Stage>, context: BuildContext): void {
  const origin = step.from === undefined ? context : stages.get(step.from);
  if (!origin) throw new Error(`line ${step.line}: COPY --from=${step.from} names no earlier stage`);
  const destination = absolute(stage, step.destination);
  const intoDirectory = step.destination.endsWith('/') || step.sources.length > 1;
  for (const source of step.sources) {
    const { files, produced } = resolveSource(source, origin);
    if (files.size === 0 && produced.length === 0) {
      throw new Error(`line ${step.line}: COPY source ${source} is not in ${step.from === undefined ? 'the build context' : `stage ${step.from}`}`);
    }
    const isFile = files.size === 1 && files.has('') && produced.length === 0;
    for (const [below, file] of files) {
      const target = isFile ? (intoDirectory ? path.posix.join(destination, path.posix.basename(source)) : destination) : path.posix.join(destination, below);
      stage.files.set(target, { origin: step.from ?? 'context', source: file });
    }
    for (const below of produced) stage.produced.add(path.posix.join(destination, below));
  }
  stage.copies.push(step);
  stage.steps.push({ copy: step });
}

/**
 * Runs the Dockerfile's instructions over a context: every stage with its files, RUN steps
 * (modelled by `runModel`), user, environment and command. A COPY whose source is missing throws,
 * naming the line, as the builder would fail.
 */
export function interpretDockerfile(text: string, context: BuildContext, runModel: RunModel): Map<string, Stage> {
  const stages = new Map<string, Stage>();
  const args: Record<string, string> = {};
  let stage: Stage | undefined;
  for (const instruction of parseInstructions(text)) {
    const body = substitute(instruction.text, { ...args, ...(stage?.env ?? {}) });
    if (instruction.keyword === 'ARG') {
      const [name, value = ''] = body.split('=');
      if (args[name!] === undefined) args[name!] = value;
      continue;
    }
    if (instruction.keyword === 'FROM') {
      const [from, as, name] = body.split(' ');
      const stageName = as?.toUpperCase() === 'AS' && name ? name : String(stages.size);
      stage = newStage(stageName, from!, stages.get(from!));
      stages.set(stageName, stage);
      continue;
    }
    if (!stage) throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
    applyInstruction(stage, instruction, body, { stages, context, runModel });
  }
  return stages;
}

function applyInstruction(
  stage: Stage,
  instruction: Instruction,
  body: string,
  { stages, context, runModel }: { stages: Map<string, Stage>; context: BuildContext; runModel: RunModel },
): void {
  switch (instruction.keyword) {
    case 'WORKDIR':
      stage.workdir = absolute(stage, body);
      break;
    case 'ENV':
      parseEnv(body, stage.env);
      break;
    case 'USER':
      stage.user = body;
      break;
    case 'CMD':
      stage.cmd = words(body);
      break;
    case 'ENTRYPOINT':
      stage.entrypoint = words(body);
      break;
    case 'COPY': {
      const { flags, rest } = parseFlags(words(body));
      applyCopy(stage, { from: flags.from, sources: rest.slice(0, -1), destination: rest.at(-1)!, line: instruction.line }, stages, context);
      break;
    }
    case 'RUN': {
      const run = { command: body, line: instruction.line, files: new Set(stage.files.keys()) };
      stage.runs.push(run);
      stage.steps.push({ run });
      for (const dir of runModel(body, stage)) stage.produced.add(absolute(stage, dir));
      break;
    }
    case 'ADD':
      throw new Error(`line ${instruction.line}: ADD is not modelled (use COPY)`);
    default:
      // EXPOSE, LABEL, HEALTHCHECK, STOPSIGNAL, SHELL: nothing on the filesystem.
      break;
  }
}

/** Whether an absolute path exists in a stage: a file, a directory holding files, or inside a produced directory. */
export function existsIn(stage: Stage, target: string): boolean {
  if (stage.files.has(target)) return true;
  for (const file of stage.files.keys()) if (file.startsWith(`${target}/`)) return true;
  for (const dir of stage.produced) if (target === dir || target.startsWith(`${dir}/`)) return true;
  return false;
}
