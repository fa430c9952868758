/**
 * Processes below a given one, read from /proc: a crashed worker's ffmpeg children are not
 * killed with it, so a test records them before the crash, checks they go, and kills leftovers
 * when it finishes. A process is known by its id and start time, so a recycled id is never
 * mistaken for it.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ProcessIdentity {
  pid: number;
  /** Clock ticks after boot when it started (/proc/<pid>/stat field 22). */
  startTicks: string;
  /** Its executable's name (`ffmpeg`, `node`, …). */
  command: string;
}

interface ProcessEntry extends ProcessIdentity {
  parent: number;
  state: string;
}

/** `pid (comm) state ppid …`; comm may hold spaces and parentheses, so fields count from the last ")". */
function parseStat(pid: number, stat: string): ProcessEntry | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, parent, startTicks] = [fields[0], Number(fields[1]), fields[19]];
  const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  return state && startTicks && Number.isInteger(parent) ? { pid, parent, state, startTicks, command } : undefined;
}

async function readEntry(pid: number): Promise<ProcessEntry | undefined> {
  try {
    return parseStat(pid, await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Children, grandchildren, … of `root` that run now. Empty where /proc is missing. */
export async function descendantsOf(root: number): Promise<ProcessIdentity[]> {
  const names = await readdir('/proc').catch(() => [] as string[]);
  const entries = await Promise.all(names.filter((name) => /^\d+$/.test(name)).map((name) => readEntry(Number(name))));
  const children = new Map<number, ProcessEntry[]>();
  for (const entry of entries) {
    if (!entry || entry.state === 'Z') continue;
    children.set(entry.parent, [...(children.get(entry.parent) ?? []), entry]);
  }
  const found: ProcessIdentity[] = [];
  const pending = [root];
  while (pending.length) {
    for (const child of children.get(pending.pop()!) ?? []) {
      found.push({ pid: child.pid, startTicks: child.startTicks, command: child.command });
      pending.push(child.pid);
    }
  }
  return found;
}

/** Whether that very process still runs (a zombie waiting to be reaped counts as gone). */
export async function isRunning(target: ProcessIdentity): Promise<boolean> {
  const entry = await readEntry(target.pid);
  return entry !== undefined && entry.state !== 'Z' && entry.startTicks === target.startTicks;
}

/** SIGKILLs each of `processes` that still runs; returns the ids it had to kill. */
export async function killStragglers(processes: readonly ProcessIdentity[]): Promise<number[]> {
  const killed: number[] = [];
  for (const straggler of processes) {
    if (!(await isRunning(straggler))) continue;
    try {
      process.kill(straggler.pid, 'SIGKILL');
      killed.push(straggler.pid);
    } catch {
      // It exited in between.
    }
  }
  return killed;
}
