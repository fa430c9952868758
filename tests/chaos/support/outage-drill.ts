/**
 * The drill of every "a service the pipeline needs goes away" scenario: six videos are
 * submitted; once one is being analysed the service is crashed; requests are made while it is
 * down; it is brought back after the outage; a seventh video is submitted as soon as the API
 * takes it. Then every video must settle `completed` with each effect exactly once, no other
 * video may exist, and no process may have exited.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from '@jest/globals';
import type { Db } from '@clipline/shared';
import type { ApiAnswer, ClipLineProcesses } from './clipline-processes.js';
import { completedSettlement, type FlowInspector } from './flow-state.js';
import { expectExactlyOnceEffects } from './stored-outcome.js';
import { generateBatch, submissionOf, submitUntilAccepted, waitForAnalysis } from './video-batch.js';

export interface OutageDrill<Probes> {
  processes: ClipLineProcesses;
  flows: FlowInspector;
  /** The database the pipeline writes to, for the exactly-once checks. */
  db: Db;
  /** Where the generated videos go. */
  storageDir: string;
  /** Milliseconds between the crash and the start of the recovery. @defaultValue 2000 */
  outageMs?: number;
  /** How the optional AI steps end: `completed` with the upstream simulator, else `skipped`. */
  aiSteps: 'completed' | 'skipped';
  /** Ends the service the way a crash does; resolves once it is gone. */
  crash(): Promise<void>;
  /** Brings the service back; resolves once it answers. */
  recover(): Promise<void>;
  /** Requests made while the service is down. */
  probe(request: { submission: object; inFlightId: string }): Promise<Probes>;
  /** Judges the answers, once submissions are accepted again (before waiting for the videos). */
  judge(probes: Probes, answersUntilAccepted: readonly ApiAnswer[]): void;
}

export async function runOutageDrill<Probes>(drill: OutageDrill<Probes>): Promise<void> {
  const { processes, flows } = drill;
  const [late, ...batch] = await generateBatch(drill.storageDir, 7);
  const ids: string[] = [];
  for (const video of batch) ids.push(await processes.submit(submissionOf(video)));
  const [inFlightId] = await waitForAnalysis(processes, ids);

  await drill.crash();
  const down = Date.now();
  const probes = await drill.probe({ submission: submissionOf(late!), inFlightId: inFlightId! });
  await sleep(Math.max(0, (drill.outageMs ?? 2000) - (Date.now() - down)));
  await drill.recover();
  const accepted = await submitUntilAccepted(processes, submissionOf(late!));
  ids.push(accepted.id);
  drill.judge(probes, accepted.answers);

  const settling = Promise.all(ids.map((id) => flows.settle(processes, id, 180_000))).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${processes.keepLogs('outage-drill')}`);
  });
  const settled = await Promise.race([settling, processes.anyExit('outage-drill')]);
  expect(settled).toEqual(ids.map((id) => completedSettlement(id, drill.aiSteps)));
  const videos = [...batch, late!];
  for (const [index, id] of ids.entries()) await expectExactlyOnceEffects(drill.db, id, videos[index]!.cutSeconds);
  // A refused submission left no row behind: only the accepted videos exist.
  const rows = await drill.db.selectFrom('videos').select('id').execute();
  expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort());
  expect(processes.exited()).toEqual([]);
}
