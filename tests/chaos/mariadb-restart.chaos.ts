/**
 * Chaos: MariaDB is SIGKILLed (every connection drops, InnoDB recovery on restart) while videos
 * are being analysed. The server is a throwaway one of this test's own, so the shared server is
 * never touched. What must hold: see `support/database-outage.ts`.
 */
import { databaseOutageScenario } from './support/database-outage.js';
import { PrivateMariadb } from './support/mariadb-server.js';

databaseOutageScenario('MariaDB', () => PrivateMariadb.create());
