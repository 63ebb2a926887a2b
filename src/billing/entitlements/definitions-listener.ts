import type { EntityManager } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { applyNotification, definitionsCacheFor, DEFINITIONS_CHANNEL } from './definitions-invalidation';

export interface DefinitionsListener {
  close(): Promise<void>;
}

const RETRY_MS = 1_000;

/**
 * Keeps this instance's definitions cache in step with writes made by any instance: LISTENs on
 * one dedicated connection (not one of the pool's: a pooled connection goes back to other work
 * and would stop hearing). When that connection drops, the cache is emptied (notifications
 * may have been missed meanwhile) and the connection is opened again.
 *
 * LISTEN needs a session of its own: through PgBouncer in transaction mode it hears nothing,
 * and entries then live until their TTL (DEFINITIONS_CACHE_TTL_MS). Point `url` at PostgreSQL
 * itself, or a session-mode pool, in such a setup.
 */
export async function startDefinitionsListener(em: EntityManager, url: string, log: Logger): Promise<DefinitionsListener> {
  const cache = definitionsCacheFor(em);
  let client: Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new Client({ connectionString: url, application_name: 'tollgate-definitions-listener' });
    next.on('notification', (message) => {
      if (message.channel === DEFINITIONS_CHANNEL) applyNotification(cache, message.payload);
    });
    next.on('error', (error) => {
      log.warn({ err: error }, 'definitions listener connection failed; reconnecting');
      lost(next);
    });
    next.on('end', () => lost(next));
    await next.connect();
    await next.query(`listen ${DEFINITIONS_CHANNEL}`);
    client = next;
    // Changes made while no connection listened were not heard.
    cache.clear();
  };

  const lost = (which: Client): void => {
    if (client !== which) return;
    client = null;
    cache.clear();
    which.end().catch(() => undefined);
    schedule();
  };

  const schedule = (): void => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      if (closed) return;
      connect().catch((error: unknown) => {
        log.warn({ err: error }, 'definitions listener could not connect; retrying');
        schedule();
      });
    }, RETRY_MS);
    retry.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const current = client;
      client = null;
      if (current) await current.end().catch(() => undefined);
    },
  };
}
