/**
 * Whose resources a call may see. The API acts for one tenant (the API key's); operators' admin
 * keys and the workers act for every tenant. Repositories take a scope and put it in the query
 * itself, so another tenant's row is as missing as a row that does not exist.
 */
export type TenantScope = { readonly kind: 'tenant'; readonly tenant: string } | { readonly kind: 'any' };

/** Every tenant: workers, and the API when an admin key calls. */
export const ANY_TENANT: TenantScope = Object.freeze({ kind: 'any' });

/** The tenant new records belong to when a caller names none (direct producers, tests). */
export const DEFAULT_TENANT = 'default';

export function tenantScope(tenant: string): TenantScope {
  return Object.freeze({ kind: 'tenant', tenant });
}

/** Tenant names: what `clipline keys create --tenant` accepts and what config keys are given. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
