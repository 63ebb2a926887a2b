import { Client } from 'pg';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '../../src/common/logger';
import { initORM, migrate } from '../../src/db/orm';
import { JobQueueRepository, stripeObjectJobKey } from '../../src/jobs/job-queue.repository';
import { installJobQueue } from '../../src/jobs/job-runner';
import type { StripeEventSnapshot } from '../../src/stripe/stripe.gateway';
import { StripeEventRepository } from '../../src/webhooks/stripe-event.repository';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

/*
 * An event recorded while a worker is locking its object's pending job. graphile-worker's
 * add_job detaches the key of a running job and then inserts `on conflict (key) do update
 * where locked_at is null`: a worker that locks the pending job between the two makes the
 * insert skip. Without a second add_job the event was recorded with no job to apply it until the
 * catch-up found it minutes later. Real PostgreSQL, graphile-worker's own SQL; the worker's
 * fetch is played by a transaction that locks the job the way graphile-worker's get_job does.
 */

let db: TestDatabase;
let orm: MikroORM;
const clients: Client[] = [];

async function connect(): Promise<Client> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  clients.push(client);
  return client;
}

function subscriptionEvent(id: string, subscriptionId: string): StripeEventSnapshot {
  const object = { id: subscriptionId, object: 'subscription', customer: 'cus_race' };
  const payload = { id, object: 'event', type: 'customer.subscription.updated', livemode: false, created: 1, data: { object } };
  return { id, type: 'customer.subscription.updated', livemode: false, apiVersion: null, createdAt: new Date(), object, previousAttributes: null, payload };
}

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM({ url: db.url });
  await migrate(orm);
  await installJobQueue(db.url, createLogger({ level: 'silent' }));
});

afterAll(async () => {
  for (const client of clients) await client.end();
  await orm?.close();
  await db?.drop();
});

describe(StripeEventRepository.name, () => {
  describe('recordAndEnqueueMany', () => {
    it('records deliveries together, answers each, and adds one job per object for the events it inserted', async () => {
      const events = new StripeEventRepository(new JobQueueRepository(12));
      const client = await connect();
      const refOf = (id: string) => ({ objectType: 'subscription', objectId: id, customerId: 'cus_many' });
      const ignoredEvent = { ...subscriptionEvent('evt_many_5', 'sub_many_b'), type: 'charge.succeeded' };
      const outcomes = await events.recordAndEnqueueMany(client, [
        { event: subscriptionEvent('evt_many_1', 'sub_many_a'), ref: refOf('sub_many_a'), apply: true },
        { event: subscriptionEvent('evt_many_2', 'sub_many_a'), ref: refOf('sub_many_a'), apply: true },
        // The same event delivered twice at once: the second is a duplicate.
        { event: subscriptionEvent('evt_many_1', 'sub_many_a'), ref: refOf('sub_many_a'), apply: true },
        { event: subscriptionEvent('evt_many_3', 'sub_many_b'), ref: refOf('sub_many_b'), apply: true, payloadJson: JSON.stringify({ id: 'evt_many_3', as: 'received' }) },
        { event: ignoredEvent, ref: refOf('sub_many_b'), apply: false },
      ]);
      expect(outcomes).toEqual(['recorded', 'recorded', 'duplicate', 'recorded', 'ignored']);
      const ledger = await client.query(`select stripe_event_id, status, payload from stripe_events where stripe_event_id like 'evt_many_%' order by stripe_event_id`);
      expect(ledger.rows.map((r) => [r.stripe_event_id, r.status])).toEqual([
        ['evt_many_1', 'received'],
        ['evt_many_2', 'received'],
        ['evt_many_3', 'received'],
        ['evt_many_5', 'ignored'],
      ]);
      // The body as received is what is stored.
      expect(ledger.rows[2].payload).toEqual({ id: 'evt_many_3', as: 'received' });
      const jobs = await client.query(`select key, queue_name from graphile_worker.jobs where key like 'stripe:subscription:sub_many_%' order by key`);
      expect(jobs.rows).toEqual([
        { key: 'stripe:subscription:sub_many_a', queue_name: 'stripe:customer:cus_many' },
        { key: 'stripe:subscription:sub_many_b', queue_name: 'stripe:customer:cus_many' },
      ]);
      // Again: every one is a duplicate now, and no job is added or changed.
      expect(await events.recordAndEnqueueMany(client, [{ event: subscriptionEvent('evt_many_2', 'sub_many_a'), ref: refOf('sub_many_a'), apply: true }])).toEqual(['duplicate']);
    });
  });

  describe('recordAndEnqueue', () => {
    it('leaves a job for the event when a worker locks the pending job of its object at the same moment', async () => {
      const events = new StripeEventRepository(new JobQueueRepository(12));
      const ref = { objectType: 'subscription', objectId: 'sub_race', customerId: 'cus_race' };
      const key = stripeObjectJobKey(ref);
      const route = await connect();
      const worker = await connect();
      expect(await events.recordAndEnqueue(route, subscriptionEvent('evt_race_1', 'sub_race'), ref, true)).toBe('recorded');

      // The worker fetches the pending job: locked, not yet committed.
      await worker.query('begin');
      const { rowCount } = await worker.query(
        `update graphile_worker._private_jobs set locked_at = now(), locked_by = 'worker-under-test', attempts = attempts + 1 where key = $1`,
        [key],
      );
      expect(rowCount).toBe(1);
      // A second delivery for the same object: its insert waits for the worker's lock.
      const second = events.recordAndEnqueue(route, subscriptionEvent('evt_race_2', 'sub_race'), ref, true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await worker.query('commit');
      expect(await second).toBe('recorded');

      const { rows } = await route.query<{ key: string | null; locked: boolean }>(
        `select key, locked_at is not null as locked from graphile_worker._private_jobs where payload->>'objectId' = 'sub_race' order by id`,
      );
      // The locked job keeps running without its key; a new pending job carries the key for evt_race_2.
      expect(rows).toEqual([
        { key: null, locked: true },
        { key, locked: false },
      ]);
    });
  });
});
