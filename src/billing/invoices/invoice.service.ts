import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { BillingError, ErrorCode } from '../../common/errors';
import type { InvoiceSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';
import { Invoice } from './invoice.entity';

export const DEFAULT_PAGE_SIZE = 10;
export const MAX_PAGE_SIZE = 100;
/** Stripe pages read per on-demand sync; older invoices arrive through webhooks. */
const MAX_SYNC_PAGES = 10;

export interface InvoicePage {
  rows: Invoice[];
  hasNextPage: boolean;
  endCursor: string | null;
}

/** The position of a row in the newest-first order; opaque to clients. */
export function encodeCursor(row: Pick<Invoice, 'stripeCreatedAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.stripeCreatedAt.getTime(), row.id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [ms, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof ms === 'number' && Number.isFinite(ms) && typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id)) {
      return { createdAt: new Date(ms), id };
    }
  } catch {
    // fall through: a malformed cursor is the caller's mistake
  }
  throw BillingError.badInput('after is not a cursor from this list', 'after');
}

export class InvoiceService {
  constructor(
    private readonly em: EntityManager,
    private readonly gateway: StripeGateway,
    private readonly log?: Logger,
  ) {}

  /**
   * `customer`'s invoices, newest first, `first` at a time after the cursor `after`. Keyset
   * pagination over (stripe_created_at, id): pages stay stable while new invoices arrive.
   * `sync` reads Stripe for the first page (by default `syncCustomer`; a request shares one).
   */
  async list(
    customer: Customer | null,
    first: number = DEFAULT_PAGE_SIZE,
    after?: string | null,
    sync: (customer: Customer) => Promise<void> = (c) => this.syncCustomer(c),
  ): Promise<InvoicePage> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw BillingError.badInput(`first must be a whole number from 1 to ${MAX_PAGE_SIZE}`, 'first');
    }
    const position = after ? decodeCursor(after) : null;
    if (!customer) return { rows: [], hasNextPage: false, endCursor: null };
    // The first page is where new invoices show up, so that is when Stripe is asked.
    if (!position) await sync(customer);
    const rows = await this.em.find(
      Invoice,
      {
        customer: customer.id,
        ...(position
          ? {
              $or: [
                { stripeCreatedAt: { $lt: position.createdAt } },
                { stripeCreatedAt: position.createdAt, id: { $lt: position.id } },
              ],
            }
          : {}),
      },
      { orderBy: { stripeCreatedAt: 'desc', id: 'desc' }, limit: first + 1 },
    );
    const hasNextPage = rows.length > first;
    const page = rows.slice(0, first);
    return { rows: page, hasNextPage, endCursor: page.length ? encodeCursor(page[page.length - 1]) : null };
  }

  /** Our row of a Stripe invoice, from the table only. */
  findByStripeId(stripeInvoiceId: string): Promise<Invoice | null> {
    return this.em.findOne(Invoice, { stripeInvoiceId });
  }

  /**
   * Reads the customer's newest invoices from Stripe into the table, so the list is current
   * even when a webhook is late or lost. It stops at the first Stripe page that holds nothing
   * new. A Stripe failure is logged and the list is served from the table.
   */
  async syncCustomer(customer: Customer): Promise<void> {
    if (!this.gateway.enabled || !customer.stripeCustomerId) return;
    try {
      let startingAfter: string | undefined;
      for (let page = 0; page < MAX_SYNC_PAGES; page++) {
        const fetchedAt = new Date();
        const result = await this.gateway.listInvoices({ customerId: customer.stripeCustomerId, limit: MAX_PAGE_SIZE, startingAfter });
        const known = result.data.length
          ? await this.em.execute<KnownInvoice[]>(
              `select stripe_invoice_id, status, amount_paid, amount_due, amount_remaining, total, paid_at, number,
                 attempt_count, next_payment_attempt
               from invoices where stripe_invoice_id in (?)`,
              [result.data.map((i) => i.id)],
            )
          : [];
        const byId = new Map(known.map((row) => [row.stripe_invoice_id, row]));
        // Only new or changed invoices are written: an unchanged page costs one read, not a write per invoice.
        for (const snapshot of result.data) {
          const row = byId.get(snapshot.id);
          if (row && !invoiceChanged(row, snapshot)) continue;
          await this.applySnapshot(this.em, snapshot, fetchedAt, customer);
        }
        if (!result.hasMore || !result.nextCursor || known.length === result.data.length) break;
        startingAfter = result.nextCursor;
      }
    } catch (error) {
      if (!(error instanceof BillingError) || error.code !== ErrorCode.PAYMENT_PROVIDER_ERROR) throw error;
      this.log?.warn({ err: error, customerId: customer.id }, 'invoices served from the database: Stripe could not be read');
    }
  }

  /**
   * Upserts one invoice from Stripe. `syncedAt` is when the snapshot was read from Stripe (or
   * the event time for an event's own copy); a row already synced later is left alone, in one
   * statement, so concurrent writers cannot interleave. Invoices of customers we do not know
   * are ignored (null).
   *
   * `actionRequired`: the event being applied is `invoice.payment_action_required`, so the
   * invoice's current attempt waits for the customer to authenticate; it is remembered by its
   * attempt number, so events of the same attempt may come in any order, and a later attempt
   * (a retry that fails outright) is no longer taken for one needing authentication.
   */
  async applySnapshot(
    em: EntityManager,
    snapshot: InvoiceSnapshot,
    syncedAt: Date,
    customer?: Customer,
    actionRequired = false,
  ): Promise<'applied' | 'stale' | null> {
    if (!snapshot.customerId) return null;
    const owner = customer ?? (await em.findOne(Customer, { stripeCustomerId: snapshot.customerId }));
    if (!owner || owner.stripeCustomerId !== snapshot.customerId) return null;
    const subscription = snapshot.subscriptionId
      ? await em.findOne(Subscription, { stripeSubscriptionId: snapshot.subscriptionId, customer: owner.id }, { fields: ['id'] })
      : null;
    // Stripe omits the status only on objects it no longer shows; draft is the safe reading.
    const status = snapshot.status ?? 'draft';
    const rows = await em.execute<{ id: string }[]>(
      `insert into invoices (id, customer_id, subscription_id, stripe_invoice_id, number, status, currency,
         amount_due, amount_paid, amount_remaining, total, hosted_invoice_url, period_start, period_end, paid_at,
         attempt_count, next_payment_attempt, action_required_attempt, stripe_created_at, stripe_synced_at, created_at, updated_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now())
       on conflict (stripe_invoice_id) do update set
         subscription_id = coalesce(excluded.subscription_id, invoices.subscription_id),
         number = excluded.number, status = excluded.status, currency = excluded.currency,
         amount_due = excluded.amount_due, amount_paid = excluded.amount_paid,
         amount_remaining = excluded.amount_remaining, total = excluded.total,
         hosted_invoice_url = excluded.hosted_invoice_url, period_start = excluded.period_start,
         period_end = excluded.period_end, paid_at = excluded.paid_at,
         attempt_count = excluded.attempt_count, next_payment_attempt = excluded.next_payment_attempt,
         action_required_attempt = coalesce(excluded.action_required_attempt, invoices.action_required_attempt),
         stripe_synced_at = excluded.stripe_synced_at, updated_at = now()
       where invoices.stripe_synced_at is null or invoices.stripe_synced_at <= excluded.stripe_synced_at
       returning id`,
      [
        randomUUID(),
        owner.id,
        subscription?.id ?? null,
        snapshot.id,
        snapshot.number,
        status,
        snapshot.currency,
        snapshot.amountDue,
        snapshot.amountPaid,
        snapshot.amountRemaining,
        snapshot.total,
        snapshot.hostedInvoiceUrl,
        snapshot.periodStart,
        snapshot.periodEnd,
        snapshot.paidAt,
        snapshot.attemptCount,
        snapshot.nextPaymentAttempt,
        actionRequired ? snapshot.attemptCount : null,
        snapshot.createdAt ?? syncedAt,
        syncedAt,
      ],
    );
    return rows.length ? 'applied' : 'stale';
  }
}

interface KnownInvoice {
  stripe_invoice_id: string;
  status: string;
  amount_paid: number;
  amount_due: number;
  amount_remaining: number;
  total: number;
  paid_at: Date | null;
  number: string | null;
  attempt_count: number;
  next_payment_attempt: Date | null;
}

/** Whether Stripe's invoice differs from our row in anything the API shows. */
function invoiceChanged(row: KnownInvoice, snapshot: InvoiceSnapshot): boolean {
  return (
    row.status !== (snapshot.status ?? 'draft') ||
    row.amount_paid !== snapshot.amountPaid ||
    row.amount_due !== snapshot.amountDue ||
    row.amount_remaining !== snapshot.amountRemaining ||
    row.total !== snapshot.total ||
    row.number !== snapshot.number ||
    row.attempt_count !== snapshot.attemptCount ||
    (row.next_payment_attempt ? new Date(row.next_payment_attempt).getTime() : null) !== (snapshot.nextPaymentAttempt?.getTime() ?? null) ||
    (row.paid_at ? new Date(row.paid_at).getTime() : null) !== (snapshot.paidAt?.getTime() ?? null)
  );
}
