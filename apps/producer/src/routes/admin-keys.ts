import express, { type Router } from 'express';
import { z } from 'zod';
import type { ApiKeyInfo, ApiKeysRepository } from '@clipline/shared';
import { describeIssues } from '../api-schemas.js';
import { requireAdmin } from '../http/auth.js';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';
import { isUnavailable } from './route-helpers.js';

export const newApiKeyRequest = z
  .strictObject({
    name: z.string().trim().min(1, 'name is required').max(100, 'name is longer than 100 characters'),
    tenant: z.string().optional().describe('Tenant the key acts for; defaults to the name, folded to lower case'),
    admin: z.boolean().optional().describe('An operator key: sees and acts on every tenant'),
  })
  .meta({ id: 'NewApiKey' });

const presentKey = (key: ApiKeyInfo) => ({
  id: key.id,
  name: key.name,
  prefix: key.prefix,
  tenant: key.tenant,
  role: key.role,
  createdAt: key.createdAt.toISOString(),
  lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
  revokedAt: key.revokedAt?.toISOString() ?? null,
});

/**
 * API keys kept in the database, for operators: create (the key is shown once), list, revoke.
 * Other keys are told these routes do not exist.
 */
export function adminKeyRoutes(deps: { keys: ApiKeysRepository }): Router {
  const router = express.Router();
  router.use('/admin', requireAdmin);
  const database = (error: unknown) => (isUnavailable(error) ? serviceUnavailable('the database is unreachable; retry shortly') : error);

  router.post('/admin/keys', async (req, res) => {
    if (!req.is('application/json')) throw new HttpProblem(415, 'Unsupported Media Type', 'send the body as JSON with "Content-Type: application/json"');
    const parsed = newApiKeyRequest.safeParse(req.body ?? undefined);
    if (!parsed.success) {
      const { detail, errors } = describeIssues(parsed.error);
      throw badRequest(detail, errors);
    }
    const { name, tenant, admin } = parsed.data;
    let created: Awaited<ReturnType<ApiKeysRepository['create']>>;
    try {
      created = await deps.keys.create(name, { ...(tenant !== undefined ? { tenant } : {}), admin: admin ?? false });
    } catch (error) {
      if (error instanceof RangeError) throw badRequest(error.message, [{ path: /tenant/.test(error.message) ? 'tenant' : 'name', message: error.message }]);
      throw database(error);
    }
    res.setHeader('cache-control', 'no-store');
    res.status(201).json(created);
  });

  router.get('/admin/keys', async (_req, res) => {
    const keys = await deps.keys.list().catch((error: unknown) => {
      throw database(error);
    });
    res.json({ items: keys.map(presentKey) });
  });

  router.delete('/admin/keys/:ref', async (req, res) => {
    const ref = String(req.params.ref);
    const outcome = await deps.keys.revoke(ref).catch((error: unknown) => {
      throw database(error);
    });
    if (outcome === 'not-found') throw notFound(`no API key "${ref.slice(0, 40)}" (give its id, its cl_… prefix or the whole key)`);
    res.json({ outcome });
  });

  return router;
}
