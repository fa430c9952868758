/**
 * Chaos: PostgreSQL crashes (immediate stop: every connection drops, WAL recovery on restart)
 * while videos are being analysed. The cluster is a throwaway one of this test's own, so the
 * shared server is never touched. What must hold: see `support/database-outage.ts`.
 */
import { databaseOutageScenario } from './support/database-outage.js';
import { PrivatePostgres } from './support/postgres-cluster.js';

databaseOutageScenario('PostgreSQL', () => PrivatePostgres.create());
