/**
 * Deletes rows a batch at a time: `round(limit)` selects at most `limit` rows and deletes them,
 * answering how many it selected and how many went. Stops after a round that selected fewer than
 * `batch`, or after `batches` rounds, so a table never purged before does not meet the statement
 * timeout with one statement over all of it. Returns the rows deleted in all.
 */
export async function deleteInBatches(
  round: (limit: number) => Promise<{ selected: number; deleted: number }>,
  batch: number,
  batches: number,
): Promise<number> {
  let deleted = 0;
  for (let done = 0; done < batches; done++) {
    const outcome = await round(batch);
    deleted += outcome.deleted;
    if (outcome.selected < batch) break;
  }
  return deleted;
}
