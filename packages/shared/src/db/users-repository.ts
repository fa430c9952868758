import { sql } from 'kysely';
import type { Db } from './connection.js';
import { isUniqueViolation, portableSql, type PortableSql } from './portable-sql.js';
import { timeQueries } from './query-timing.js';
import { ANY_TENANT, DEFAULT_TENANT, type TenantScope } from '../tenancy.js';

export interface UserView {
  id: string;
  email: string;
  name: string | null;
  status: 'pending' | 'active' | 'failed';
  failure: string | null;
  createdAt: string;
  activatedAt: string | null;
  welcomedAt: string | null;
}

/** Seconds after which a user still pending is taken to be stuck: a registration takes about a second of hashing. */
export const STALE_PENDING_SECONDS = 3600;

/** Users: created pending by the API, activated once the CPU pool has hashed the password. Never returns the hash. */
export class UsersRepository {
  private readonly dialect: PortableSql;

  constructor(private readonly db: Db) {
    this.dialect = portableSql(db);
  }

  /**
   * Inserts a pending user; 'duplicate' when the email (any case, any script) is taken, as the
   * unique index on the lower-cased email says. Ids are fresh uuids, so the email is the key that
   * collides. A registration stuck on its way is not an account: a user whose registration failed,
   * or pending past {@link STALE_PENDING_SECONDS} (its job gave up, or its worker died too often),
   * gives its email back to a new registration instead of holding it forever.
   */
  async createPending(user: { id: string; email: string; name: string | null; tenantId?: string }): Promise<'created' | 'duplicate'> {
    const first = await this.insertPending(user);
    if (first === 'created') return first;
    const released = await this.db
      .deleteFrom('users')
      .where('tenant_id', '=', user.tenantId ?? DEFAULT_TENANT)
      // SQLite's lower() folds ASCII letters only: there the folded address is a column of its own.
      .where(this.dialect.engine === 'sqlite' ? sql<string>`email_lower` : sql<string>`lower(email)`, '=', user.email.toLowerCase())
      .where((eb) =>
        eb.or([eb('status', '=', 'failed'), eb.and([eb('status', '=', 'pending'), eb('created_at', '<', this.dialect.secondsAgo(STALE_PENDING_SECONDS))])]),
      )
      .executeTakeFirst();
    return Number(released.numDeletedRows) > 0 ? this.insertPending(user) : 'duplicate';
  }

  private async insertPending(user: { id: string; email: string; name: string | null; tenantId?: string }): Promise<'created' | 'duplicate'> {
    try {
      await this.db
        .insertInto('users')
        .values({
          id: user.id,
          email: user.email,
          ...(this.dialect.engine === 'sqlite' ? { email_lower: user.email.toLowerCase() } : {}),
          name: user.name,
          tenant_id: user.tenantId ?? DEFAULT_TENANT,
          password_hash: null,
          status: 'pending',
          failure: null,
          activated_at: null,
          welcomed_at: null,
        })
        .execute();
      return 'created';
    } catch (error) {
      if (isUniqueViolation(error)) return 'duplicate';
      throw error;
    }
  }

  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('users').where('id', '=', id).execute();
  }

  /** Stores the hash and activates; a retried job finds the user active and changes nothing. */
  async activate(id: string, passwordHash: string): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ password_hash: passwordHash, status: 'active', activated_at: this.dialect.now(), failure: null })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async fail(id: string, reason: string): Promise<void> {
    await this.db.updateTable('users').set({ status: 'failed', failure: reason }).where('id', '=', id).where('status', '=', 'pending').execute();
  }

  async markWelcomed(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ welcomed_at: this.dialect.now() })
      .where('id', '=', id)
      .where('welcomed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async passwordHash(id: string): Promise<string | null> {
    const row = await this.db.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirst();
    return row?.password_hash ?? null;
  }

  /** The user, when it exists in `scope`. */
  async find(id: string, scope: TenantScope = ANY_TENANT): Promise<UserView | undefined> {
    let query = this.db
      .selectFrom('users')
      .select(['id', 'email', 'name', 'status', 'failure', 'created_at', 'activated_at', 'welcomed_at'])
      .where('id', '=', id);
    if (scope.kind === 'tenant') query = query.where('tenant_id', '=', scope.tenant);
    const row = await query.executeTakeFirst();
    return (
      row && {
        id: row.id,
        email: row.email,
        name: row.name,
        status: row.status,
        failure: row.failure,
        createdAt: row.created_at.toISOString(),
        activatedAt: row.activated_at?.toISOString() ?? null,
        welcomedAt: row.welcomed_at?.toISOString() ?? null,
      }
    );
  }
}

timeQueries(UsersRepository, 'users');
