import express, { type Router } from 'express';
import { WEBHOOK_SECRET_OVERLAP_SECONDS, type WebhookSecretsRepository } from '@clipline/shared';
import { SecretDecryptionError } from '@clipline/shared/crypto';
import { callerOf } from '../http/auth.js';
import { HttpProblem, serviceUnavailable } from '../http/problem.js';
import { isUnavailable } from './route-helpers.js';

/**
 * The caller's tenant's webhook signing secret (Standard Webhooks `whsec_…`), and its rotation:
 * the old secret keeps signing beside the new one for a day, so receivers switch without a gap.
 */
export function webhookSecretRoutes(deps: { secrets: WebhookSecretsRepository }): Router {
  const router = express.Router();
  const database = (error: unknown) => {
    if (isUnavailable(error)) return serviceUnavailable('the database is unreachable; retry shortly');
    // The keyring lost the key that sealed the secret: said plainly, with the way out.
    if (error instanceof SecretDecryptionError) {
      return new HttpProblem(500, 'Internal Server Error', `the webhook secret cannot be opened (${error.message}); rotate it to get a new one`);
    }
    return error;
  };

  router.get('/webhook-secret', async (_req, res) => {
    const { tenant } = callerOf(res);
    const current = await deps.secrets.current(tenant).catch((error: unknown) => {
      throw database(error);
    });
    res.setHeader('cache-control', 'no-store');
    res.json({ tenant, secret: current.secret, createdAt: current.createdAt.toISOString() });
  });

  // "/webhook-secret:rotate": the colon is literal here, not a route parameter.
  router.post(/^\/webhook-secret:rotate$/, async (_req, res) => {
    const { tenant } = callerOf(res);
    const rotated = await deps.secrets.rotate(tenant).catch((error: unknown) => {
      throw database(error);
    });
    res.setHeader('cache-control', 'no-store');
    res.json({
      tenant,
      secret: rotated.secret,
      createdAt: rotated.createdAt.toISOString(),
      previousSecretExpiresAt: rotated.previousExpiresAt?.toISOString() ?? null,
      overlapSeconds: WEBHOOK_SECRET_OVERLAP_SECONDS,
    });
  });

  return router;
}
