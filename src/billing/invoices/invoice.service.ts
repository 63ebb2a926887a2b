import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError } from '../../common/errors';
import type { InvoiceSnapshot } from '../../stripe/stripe.gateway';
import { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';
import { Invoice } from './invoice.entity';

export const DEFAULT_PAGE_SIZE = 10;
export const MAX_PAGE_SIZE = 100;

export interface InvoicePage {
  rows: Invoice[];
  hasNextPage: boolean;
  endCursor: string | null;
}

/** The position of a row in the newest-first order; opaque to clients. */
export function encodeCursor(row: Pick<Invoice, 'stripeCreatedAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.stripeCreatedAt.getTime(), row.id])).toString('base64url');
}

/**
 * `at` down to the whole second: the time to store an invoice read from a mutation's answer
 * under, taken before the call. Stripe dates events in whole seconds, so every event about the
 * invoice created during or after the call (its payment, say) is as new or newer, and wins.
 */
export function stripeSecond(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 1000) * 1000);
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

/**
 * The `invoices` table: a mirror of the customers' Stripe invoices. Queries read it only; it is
 * written where Stripe's invoices arrive: the invoice and subscription events (the event catch-up
 * job fetches the ones whose webhook never came) and the mutations that get an invoice back
 * (startSubscription's first invoice, a plan change's proration invoice).
 */
export class InvoiceService {
  constructor(private readonly em: EntityManager) {}

  /**
   * `customer`'s invoices, newest first, `first` at a time after the cursor `after`. Keyset
   * pagination over (stripe_created_at, id): pages stay stable while new invoices arrive. Reads
   * the table only: no Stripe call, no write.
   */
  async list(customer: Customer | null, first: number = DEFAULT_PAGE_SIZE, after?: string | null): Promise<InvoicePage> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw BillingError.badInput(`first must be a whole number from 1 to ${MAX_PAGE_SIZE}`, 'first');
    }
    const position = after ? decodeCursor(after) : null;
    if (!customer) return { rows: [], hasNextPage: false, endCursor: null };
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
