import type { ClientBase } from 'pg';
import type { IngestItem, ReceiveOutcome, StripeEventRepository } from './stripe-event.repository';

interface Pending {
  item: IngestItem;
  resolve: (outcome: ReceiveOutcome) => void;
  reject: (error: unknown) => void;
}

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
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;

  constructor(
    private readonly events: StripeEventRepository,
    /** Runs `fn` on a connection of the API's pool. */
    private readonly withConnection: <T>(fn: (client: ClientBase) => Promise<T>) => Promise<T>,
    options: WebhookIngestBatcherOptions = {},
  ) {
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 2);
    this.maxBatch = Math.max(1, options.maxBatch ?? 100);
  }

  record(item: IngestItem): Promise<ReceiveOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.startQueued();
    });
  }

  private startQueued(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      void this.flush(this.queue.splice(0, this.maxBatch));
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.inFlight++;
    let outcomes: ReceiveOutcome[] | null = null;
    let failure: unknown;
    try {
      outcomes = await this.withConnection((client) => this.events.recordAndEnqueueMany(client, batch.map((p) => p.item)));
    } catch (error) {
      failure = error;
    } finally {
      this.inFlight--;
    }
    // The deliveries that arrived while this statement ran go to the database first.
    this.startQueued();
    if (outcomes) {
      batch.forEach((p, i) => p.resolve(outcomes[i]));
    } else if (batch.length === 1) {
      batch[0].reject(failure);
    } else {
      for (const p of batch) this.retryAlone(p);
    }
  }

  private retryAlone(p: Pending): void {
    this.withConnection((client) => this.events.recordAndEnqueueMany(client, [p.item])).then(([outcome]) => p.resolve(outcome), p.reject);
  }
}
