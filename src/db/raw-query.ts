import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { ClientBase } from 'pg';

/** The pool behind the ORM (knex's), lending its `pg` connections. */
interface KnexClient {
  acquireConnection(): Promise<ClientBase>;
  releaseConnection(connection: ClientBase): Promise<void>;
}

function poolOf(owner: MikroORM | EntityManager): KnexClient {
  const em = 'em' in owner ? owner.em : owner;
  return em.getConnection().getKnex().client as unknown as KnexClient;
}

/**
 * Lends a connection of the ORM's own pool to `fn` and takes it back after, straight to the
 * PostgreSQL driver: no query builder, formatting or hydration. For the few statements on a
 * hot path where those cost more than the statement itself (the subscriptions list, the
 * usage ledger's shared insert, the forwarder's claims). Statements run in autocommit, outside
 * any transaction of an EntityManager, unless `fn` opens one on the connection.
 */
export async function withPoolConnection<T>(owner: MikroORM | EntityManager, fn: (connection: ClientBase) => Promise<T>): Promise<T> {
  const pool = poolOf(owner);
  const connection = await pool.acquireConnection();
  try {
    return await fn(connection);
  } finally {
    await pool.releaseConnection(connection);
  }
}

/** One statement (`$1`-style parameters) on a connection of the ORM's pool (see withPoolConnection). */
export async function rawQuery<T>(owner: MikroORM | EntityManager, text: string, values: unknown[] = []): Promise<T[]> {
  return withPoolConnection(owner, async (connection) => (await connection.query(text, values)).rows as T[]);
}

/** Borrow and return connections of the ORM's pool one at a time (for code that holds one across calls). */
export function poolLender(owner: MikroORM | EntityManager): { acquire(): Promise<ClientBase>; release(connection: ClientBase): void } {
  const pool = poolOf(owner);
  return { acquire: () => pool.acquireConnection(), release: (connection) => void pool.releaseConnection(connection) };
}
