import type { PendingChangeSnapshot } from './subscription.entity';
import type { EntityManager } from '@mikro-orm/postgresql';
import { rawQuery } from '../../db/raw-query';
import type { InvoiceView } from '../invoices/invoice.view';

/** A subscription as the API reads it: the columns its GraphQL type shows, and its price. */
export interface SubscriptionView {
  id: string;
  status: string;
  quantity: number;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  trialEnd: Date | null;
  createdAt: Date;
  price: { id: string };
  /** The change a schedule or a pending update holds for later. */
  pendingChange: PendingChangeSnapshot | null;
  /** Stripe's latest invoice of the subscription, when we hold it. */
  latestInvoice: InvoiceView | null;
  /** The trial end Stripe announced with `trial_will_end`. */
  trialEndNoticeFor: Date | null;
}

/** The ORM has the driver hand timestamps over as text; read on their own they may be either. */
type Timestamp = Date | string;

function date(value: Timestamp): Date;
function date(value: Timestamp | null): Date | null;
function date(value: Timestamp | null): Date | null {
  return value === null || value instanceof Date ? value : new Date(value);
}

interface Row {
  id: string;
  status: string;
  quantity: number;
  current_period_start: Timestamp | null;
  current_period_end: Timestamp | null;
  cancel_at_period_end: boolean;
  canceled_at: Timestamp | null;
  trial_end: Timestamp | null;
  created_at: Timestamp;
  price_id: string;
  pending_change: PendingChangeSnapshot | string | null;
  trial_end_notice_for: Timestamp | null;
  li_id: string | null;
  li_number: string | null;
  li_status: string | null;
  li_currency: string | null;
  li_amount_due: number | null;
  li_amount_paid: number | null;
  li_amount_remaining: number | null;
  li_total: number | null;
  li_hosted_invoice_url: string | null;
  li_period_start: Timestamp | null;
  li_period_end: Timestamp | null;
  li_paid_at: Timestamp | null;
  li_attempt_count: number | null;
  li_next_payment_attempt: Timestamp | null;
  li_action_required_attempt: number | null;
  li_stripe_created_at: Timestamp | null;
}

const COLUMNS = `s.id, s.status, s.quantity, s.current_period_start, s.current_period_end, s.cancel_at_period_end,
  s.canceled_at, s.trial_end, s.created_at, s.price_id, s.pending_change, s.trial_end_notice_for,
  li.id as li_id, li.number as li_number, li.status as li_status, li.currency as li_currency,
  li.amount_due as li_amount_due, li.amount_paid as li_amount_paid, li.amount_remaining as li_amount_remaining,
  li.total as li_total, li.hosted_invoice_url as li_hosted_invoice_url, li.period_start as li_period_start,
  li.period_end as li_period_end, li.paid_at as li_paid_at, li.attempt_count as li_attempt_count,
  li.next_payment_attempt as li_next_payment_attempt, li.action_required_attempt as li_action_required_attempt,
  li.stripe_created_at as li_stripe_created_at`;

/** The subscription's latest invoice (one row at most: stripe_invoice_id is unique). */
const LATEST_INVOICE = 'left join invoices li on li.stripe_invoice_id = s.latest_stripe_invoice_id';

/**
 * The read path of `subscriptions`, `viewer.subscriptions` and the like: parameterised SQL
 * straight to the driver. Listing a customer's subscriptions is the most repeated authenticated
 * read, and through the ORM (query building, entity hydration, the identity map) it cost several
 * times the statement itself; these rows are only read and mapped to the API.
 *
 * Concurrent reads share statements (see SharedRead): under load, one statement answers every
 * caller that asked while the previous one ran, instead of one round trip each. Every caller is
 * answered by a statement that started after it asked, so it sees everything committed before
 * (its own last mutation included), exactly as a statement of its own would: this batches
 * reads, it caches nothing.
 */
export class SubscriptionReadRepository {
  constructor(private readonly em: EntityManager) {}

  /** The subscriptions of the customer of `userId` (none when it has no customer yet), newest first. */
  async listForUser(userId: string, status?: string | null): Promise<SubscriptionView[]> {
    return withStatus(await sharedReadsOf(this.em).byUser.load(userId), status);
  }

  /** The subscriptions of `customerId`, newest first. */
  async listForCustomer(customerId: string, status?: string | null): Promise<SubscriptionView[]> {
    return withStatus(await sharedReadsOf(this.em).byCustomer.load(customerId), status);
  }
}

function withStatus(rows: SubscriptionView[], status: string | null | undefined): SubscriptionView[] {
  return status ? rows.filter((row) => row.status === status) : rows;
}

/** Newest first, as every list of subscriptions is shown. */
const ORDER = 'order by s.created_at desc, s.id asc';

interface SharedReads {
  byUser: SharedRead<SubscriptionView[]>;
  byCustomer: SharedRead<SubscriptionView[]>;
}

// One set per ORM instance (its forks share one configuration object).
const sharedReads = new WeakMap<object, SharedReads>();

function sharedReadsOf(em: EntityManager): SharedReads {
  let reads = sharedReads.get(em.config);
  if (!reads) {
    const group = (key: 'user_id' | 'customer_id') => async (keys: string[]) => {
      const rows = await rawQuery<Row & { key: string }>(
        em,
        key === 'user_id'
          ? `select c.user_id as key, ${COLUMNS} from subscriptions s join customers c on c.id = s.customer_id ${LATEST_INVOICE} where c.user_id = any($1::text[]) ${ORDER}`
          : `select s.customer_id::text as key, ${COLUMNS} from subscriptions s ${LATEST_INVOICE} where s.customer_id = any($1::uuid[]) ${ORDER}`,
        [keys],
      );
      const byKey = new Map<string, SubscriptionView[]>();
      for (const row of rows) {
        const list = byKey.get(row.key);
        if (list) list.push(toView(row));
        else byKey.set(row.key, [toView(row)]);
      }
      return byKey;
    };
    reads = { byUser: new SharedRead(group('user_id')), byCustomer: new SharedRead(group('customer_id')) };
    sharedReads.set(em.config, reads);
  }
  return reads;
}

/** Keys one statement reads at most; more callers wait for the next. */
const MAX_KEYS_PER_STATEMENT = 500;

/**
 * Statements one SharedRead runs at once. One: each round trip costs the server's main thread
 * more than the rows it returns (writing to the socket wakes the database, about 0.3 ms here),
 * so the fewer statements per request the better; callers that arrive meanwhile share the next.
 */
const MAX_IN_FLIGHT = 1;

/**
 * Reads by key with concurrent callers sharing statements: a call made while fewer than
 * `maxInFlight` statements run starts one at once; calls made while that many run wait for one
 * of them to finish and share the next. So every call is answered by a statement that started
 * after it was made.
 */
export class SharedRead<V extends unknown[]> {
  private waiting = new Map<string, { resolve: (value: V) => void; reject: (error: unknown) => void }[]>();
  private running = 0;

  constructor(
    private readonly read: (keys: string[]) => Promise<Map<string, V>>,
    private readonly maxInFlight = MAX_IN_FLIGHT,
  ) {}

  load(key: string): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const callers = this.waiting.get(key);
      if (callers) callers.push({ resolve, reject });
      else this.waiting.set(key, [{ resolve, reject }]);
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running >= this.maxInFlight || this.waiting.size === 0) return;
    this.running++;
    const batch = new Map<string, { resolve: (value: V) => void; reject: (error: unknown) => void }[]>();
    for (const [key, callers] of this.waiting) {
      if (batch.size >= MAX_KEYS_PER_STATEMENT) break;
      batch.set(key, callers);
    }
    for (const key of batch.keys()) this.waiting.delete(key);
    try {
      const values = await this.read([...batch.keys()]);
      for (const [key, callers] of batch) for (const caller of callers) caller.resolve(values.get(key) ?? ([] as unknown as V));
    } catch (error) {
      for (const callers of batch.values()) for (const caller of callers) caller.reject(error);
    } finally {
      this.running--;
      void this.run();
    }
  }
}

function toView(row: Row): SubscriptionView {
  return {
    id: row.id,
    status: row.status,
    quantity: row.quantity,
    currentPeriodStart: date(row.current_period_start),
    currentPeriodEnd: date(row.current_period_end),
    cancelAtPeriodEnd: row.cancel_at_period_end,
    canceledAt: date(row.canceled_at),
    trialEnd: date(row.trial_end),
    createdAt: date(row.created_at),
    price: { id: row.price_id },
    // jsonb may come back as text on the ORM's connections, as timestamps do.
    pendingChange: typeof row.pending_change === 'string' ? (JSON.parse(row.pending_change) as PendingChangeSnapshot) : row.pending_change,
    trialEndNoticeFor: date(row.trial_end_notice_for),
    latestInvoice: row.li_id
      ? {
          id: row.li_id,
          number: row.li_number,
          status: row.li_status ?? 'draft',
          currency: row.li_currency ?? '',
          amountDue: row.li_amount_due ?? 0,
          amountPaid: row.li_amount_paid ?? 0,
          amountRemaining: row.li_amount_remaining ?? 0,
          total: row.li_total ?? 0,
          hostedInvoiceUrl: row.li_hosted_invoice_url,
          periodStart: date(row.li_period_start),
          periodEnd: date(row.li_period_end),
          paidAt: date(row.li_paid_at),
          attemptCount: row.li_attempt_count ?? 0,
          nextPaymentAttempt: date(row.li_next_payment_attempt),
          actionRequiredAttempt: row.li_action_required_attempt,
          stripeCreatedAt: date(row.li_stripe_created_at) ?? new Date(0),
        }
      : null,
  };
}
