import type { ClientBase } from 'pg';
import type { StripeEventSnapshot } from '../../../src/stripe/stripe.gateway';
import type { IngestItem, ReceiveOutcome, StripeEventRepository } from '../../../src/webhooks/stripe-event.repository';
import { WebhookIngestBatcher } from '../../../src/webhooks/webhook-ingest.batcher';

/*
 * How deliveries are grouped into statements, and what a failed statement does to its
 * deliveries. The repository here records calls instead of writing (the statement itself is
 * covered against PostgreSQL in test/integration/webhooks-enqueue-race.test.ts).
 */

function item(id: string): IngestItem {
  const event = { id, type: 'customer.updated', livemode: false, apiVersion: null, createdAt: new Date(0), object: {}, previousAttributes: null, payload: {} } as StripeEventSnapshot;
  return { event, ref: null, apply: false };
}

/** A repository whose statements take `ms` and fail when `fails` says so. */
function fakeRepository(fails: (ids: string[]) => boolean, ms = 20) {
  const statements: string[][] = [];
  const repo = {
    recordAndEnqueueMany: async (_client: ClientBase, items: readonly IngestItem[]): Promise<ReceiveOutcome[]> => {
      const ids = items.map((i) => i.event.id);
      statements.push(ids);
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (fails(ids)) throw new Error(`statement of ${ids.join(',')} failed`);
      return items.map(() => 'ignored');
    },
  } as unknown as StripeEventRepository;
  return { repo, statements };
}

const noConnection = <T>(fn: (client: ClientBase) => Promise<T>) => fn({} as ClientBase);

describe(WebhookIngestBatcher.name, () => {
  describe('record', () => {
    it('sends a delivery alone when statements are free, and those arriving meanwhile together in the next', async () => {
      const { repo, statements } = fakeRepository(() => false);
      const batcher = new WebhookIngestBatcher(repo, noConnection, { maxInFlight: 1 });
      const outcomes = await Promise.all(['a', 'b', 'c', 'd'].map((id) => batcher.record(item(id))));
      expect(outcomes).toEqual(['ignored', 'ignored', 'ignored', 'ignored']);
      expect(statements).toEqual([['a'], ['b', 'c', 'd']]);
    });

    it('puts at most maxBatch deliveries in one statement', async () => {
      const { repo, statements } = fakeRepository(() => false);
      const batcher = new WebhookIngestBatcher(repo, noConnection, { maxInFlight: 1, maxBatch: 2 });
      await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => batcher.record(item(id))));
      expect(statements).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    });

    it('tries each delivery of a failed statement alone, so one bad delivery fails only itself', async () => {
      // A statement holding `bad` fails; the others succeed once apart from it.
      const { repo, statements } = fakeRepository((ids) => ids.includes('bad'));
      const batcher = new WebhookIngestBatcher(repo, noConnection, { maxInFlight: 1 });
      const results = await Promise.allSettled(['first', 'x', 'bad', 'y'].map((id) => batcher.record(item(id))));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(statements[1]).toEqual(['x', 'bad', 'y']);
      expect(statements.slice(2).sort()).toEqual([['bad'], ['x'], ['y']]);
    });
  });
});
