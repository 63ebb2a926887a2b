import type { MikroORM } from '@mikro-orm/postgresql';

interface PgConnection {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<void>;
}

/**
 * One SQL statement (`$1`-style parameters) on a connection of the ORM's own pool, straight to
 * the PostgreSQL driver: no query builder, formatting or hydration. For the few reads on every
 * request's path where those cost more than the query itself. Runs in autocommit, outside any
 * transaction of an EntityManager.
 */
export async function rawQuery<T>(orm: MikroORM, text: string, values: unknown[] = []): Promise<T[]> {
  const client = orm.em.getConnection().getKnex().client as unknown as KnexClient;
  const connection = await client.acquireConnection();
  try {
    return (await connection.query(text, values)).rows as T[];
  } finally {
    await client.releaseConnection(connection);
  }
}
