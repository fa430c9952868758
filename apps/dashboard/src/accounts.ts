import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '@clipline/shared';

/** What a signed-in operator may do: `admin` everything Bull Board offers, `viewer` only look. */
export type DashboardRole = 'admin' | 'viewer';

/** Result of reading an `Authorization` header. */
export type PresentedCredentials =
  /** No header at all: the browser has not been challenged yet. */
  | { kind: 'absent' }
  /** A header that names no account: malformed, another scheme, or a wrong user or password. */
  | { kind: 'rejected' }
  | { kind: 'accepted'; role: DashboardRole };

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Checks HTTP Basic credentials against the admin account and, when configured, the viewer
 * account. Both are compared as SHA-256 digests with `timingSafeEqual`, and every candidate is
 * compared on every attempt, so timing reveals neither the content, the length, nor which
 * account a guess came close to.
 */
export function accountVerifier(
  config: Pick<Config, 'dashboardUser' | 'dashboardPassword' | 'dashboardViewer'>,
): (authorization: string | undefined) => PresentedCredentials {
  // Admin first: should both accounts share credentials, the stronger role is the one meant.
  const accounts: { role: DashboardRole; expected: Buffer }[] = [{ role: 'admin', expected: digest(`${config.dashboardUser}:${config.dashboardPassword}`) }];
  if (config.dashboardViewer) accounts.push({ role: 'viewer', expected: digest(`${config.dashboardViewer.user}:${config.dashboardViewer.password}`) });

  return (authorization) => {
    if (authorization === undefined) return { kind: 'absent' };
    const match = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(authorization);
    if (!match?.[1]) return { kind: 'rejected' };
    const presented = digest(Buffer.from(match[1], 'base64').toString('utf8'));
    let role: DashboardRole | undefined;
    for (const account of accounts) if (timingSafeEqual(account.expected, presented) && !role) role = account.role;
    return role ? { kind: 'accepted', role } : { kind: 'rejected' };
  };
}
