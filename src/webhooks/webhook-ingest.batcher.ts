import type { ClientBase } from 'pg';
import { GroupCommit } from '../common/group-commit';
import type { IngestItem, ReceiveOutcome, StripeEventRepository } from './stripe-event.repository';

export interface WebhookIngestBatcherOptions {
  /** Statements in flight at once; deliveries arriving meanwhile wait and go together in the next. */
  maxInFlight?: number;
  /** Most deliveries in one statement. */
  maxBatch?: number;
}

/**
 * Records concurrent webhook deliveries together: a delivery that arrives while fewer than
 * `maxInFlight` statements run goes to the database at once, alone; those that arrive while the
 * statements are busy wait and go together in the next one (StripeEventRepository
 * .recordAndEnqueueMany), so a burst costs a few commits instead of one each. Nothing is
 * answered before its statement committed. When a statement of several deliveries fails, each
 * is tried again alone, so one bad delivery cannot fail the others.
 */
export class WebhookIngestBatcher {
  /** Outcomes are settled results: a delivery retried alone fails on its own. */
  private readonly statements: GroupCommit<IngestItem, PromiseSettledResult<ReceiveOutcome>>;

  constructor(
    private readonly events: StripeEventRepository,
    /** Runs `fn` on a connection of the API's pool. */
    private readonly withConnection: <T>(fn: (client: ClientBase) => Promise<T>) => Promise<T>,
    options: WebhookIngestBatcherOptions = {},
  ) {
    this.statements = new GroupCommit((items) => this.recordAll(items), { maxInFlight: options.maxInFlight ?? 2, maxBatch: options.maxBatch ?? 100 });
  }

  async record(item: IngestItem): Promise<ReceiveOutcome> {
    const result = await this.statements.submit(item);
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }

  private async recordAll(items: IngestItem[]): Promise<PromiseSettledResult<ReceiveOutcome>[]> {
    try {
      return (await this.recordMany(items)).map((value) => ({ status: 'fulfilled', value }));
    } catch (error) {
      if (items.length === 1) throw error;
      // One bad delivery must not fail the others: each is tried again alone.
      return Promise.allSettled(items.map(async (item) => (await this.recordMany([item]))[0]));
    }
  }

  private recordMany(items: IngestItem[]): Promise<ReceiveOutcome[]> {
    return this.withConnection((client) => this.events.recordAndEnqueueMany(client, items));
  }
}
