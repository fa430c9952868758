import { randomUUID } from 'node:crypto';
import express, { type Router } from 'express';
import { z } from 'zod';
import { accountsQueue, encryptSecret, type JobQueues, type Keyring, type UsersRepository } from '@clipline/shared';
import { describeIssues, withoutNul } from '../api-schemas.js';
import type { StrengthPool } from '../accounts/strength-pool.js';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';
import { fromDatabase, isUnavailable } from './route-helpers.js';
import { callerOf, scopeOf } from '../http/auth.js';

export const MIN_PASSWORD_SCORE = 3;

export const userRegistration = z
  .strictObject({
    email: z.email({ message: 'email is not a valid address' }).max(254, 'email is longer than 254 characters'),
    password: z
      .string({ error: (issue) => (issue.input === undefined ? 'password is required' : 'password must be a string') })
      .min(10, 'password must be at least 10 characters')
      .max(128, 'password must be at most 128 characters'),
    name: z
      .string()
      .trim()
      .min(1)
      .max(200, 'name is longer than 200 characters')
      .refine(...withoutNul('name'))
      .optional(),
  })
  .meta({ id: 'UserRegistration' });

export interface UserRoutesDependencies {
  users: UsersRepository;
  jobs: JobQueues;
  strength: StrengthPool;
  keyring: Keyring;
  queueReady(): boolean;
}

/** Refuses a weak password with advice (400), judged against what else the form holds. */
async function requireStrong(strength: UserRoutesDependencies['strength'], password: string, email: string, name: string | undefined): Promise<void> {
  // What the user typed elsewhere in the form makes a password guessable: feed it to the estimator.
  const local = email.split('@')[0] ?? '';
  const userInputs = [email, local, local.replace(/[^\p{L}\p{N}]+/gu, ''), ...local.split(/[^\p{L}\p{N}]+/u), ...(name ? [name, ...name.split(/\s+/)] : [])];
  const verdict = await strength
    .check(
      password,
      userInputs.filter((input) => input.length > 1),
    )
    .catch((error: unknown) => {
      // A burst past what the checking thread has queued: a moment's wait, not a failure.
      if (/queue is at limit/i.test((error as Error)?.message ?? '')) {
        throw new HttpProblem(503, 'Service Unavailable', 'too many registrations are being checked at once; retry shortly', {}, { 'retry-after': '2' });
      }
      throw error;
    });
  if (verdict.score < MIN_PASSWORD_SCORE) {
    const advice = [verdict.warning, ...verdict.suggestions].filter(Boolean).join(' ');
    throw badRequest(`password is too weak (strength ${verdict.score} of 4, ${MIN_PASSWORD_SCORE} needed)${advice ? `: ${advice}` : ''}`, [
      { path: 'password', message: `strength ${verdict.score} of 4` },
    ]);
  }
}

/**
 * Registration, the hybrid flow: the API checks the email and the password's strength (in a
 * thread), stores the user pending, and hands the password — sealed with AES-256-GCM, never in
 * clear — to the CPU pool, which hashes it and activates the user; a welcome follows.
 */
export function userRoutes(deps: UserRoutesDependencies): Router {
  const router = express.Router();

  router.post('/users', async (req, res) => {
    if (!req.is('application/json')) throw new HttpProblem(415, 'Unsupported Media Type', 'send the body as JSON with "Content-Type: application/json"');
    const parsed = userRegistration.safeParse(req.body ?? undefined);
    if (!parsed.success) {
      // Never echo the password back, even in an error.
      const { detail, errors } = describeIssues(parsed.error);
      throw badRequest(detail, errors);
    }
    const { email, name } = parsed.data;
    // Judged as it is hashed: the same password typed on another keyboard (full-width letters)
    // arrives in another Unicode form, and the hash is of its NFKC form.
    const password = parsed.data.password.normalize('NFKC');
    if (password.length > 128) throw badRequest('password must be at most 128 characters', [{ path: 'password', message: 'at most 128 characters' }]);
    await requireStrong(deps.strength, password, email, name);
    if (!deps.queueReady()) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
    const id = randomUUID();
    let outcome: Awaited<ReturnType<UsersRepository['createPending']>>;
    try {
      outcome = await deps.users.createPending({ id, email, name: name ?? null, tenantId: callerOf(res).tenant });
    } catch (error) {
      if (isUnavailable(error)) throw serviceUnavailable('the database is unreachable; retry shortly');
      throw error;
    }
    if (outcome === 'duplicate') throw new HttpProblem(409, 'Conflict', 'a user with this email already exists');
    try {
      // Bound to the user id: a sealed password cannot be replayed for another user.
      const sealedPassword = encryptSecret(password, deps.keyring, id);
      await deps.jobs.add(accountsQueue, 'register-user', { userId: id, sealedPassword }, { jobId: `register-${id}` });
    } catch (error) {
      await deps.users.remove(id).catch(() => {});
      if (isUnavailable(error)) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
      throw error;
    }
    res
      .status(202)
      .location(`/v1/users/${id}`)
      .json({ id, status: 'pending', links: { self: `/v1/users/${id}` } });
  });

  router.get('/users/:id', async (req, res) => {
    const id = String(req.params.id).toLowerCase();
    if (!z.uuid().safeParse(id).success) throw notFound(`no user with id "${id.slice(0, 100)}" (ids are UUIDs)`);
    const user = await fromDatabase(deps.users.find(id, scopeOf(res)));
    if (!user) throw notFound(`no user with id ${id}`);
    res.json({ ...user, links: { self: `/v1/users/${id}` } });
  });

  return router;
}
