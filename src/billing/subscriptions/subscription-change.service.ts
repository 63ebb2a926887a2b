import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import { assertId } from '../../common/ids';
import { idempotencyKey } from '../../stripe/idempotency';
import type {
  InvoicePreviewSnapshot,
  PaymentBehavior,
  ProrationBehavior,
  StripeGateway,
  SubscriptionItemChange,
  SubscriptionScheduleSnapshot,
} from '../../stripe/stripe.gateway';
import { Meter } from '../catalog/meter.entity';
import { Price } from '../catalog/price.entity';
import type { Customer } from '../customers/customer.entity';
import { InvoiceService, stripeSecond } from '../invoices/invoice.service';
import { Subscription, type PendingChangeSnapshot } from './subscription.entity';
import {
  LIVE_STATUSES,
  lockCustomerSubscriptions,
  MAX_QUANTITY,
  meteredPricesOfPlan,
  SubscriptionService,
  type SubscriptionServiceOptions,
  type UpdateSubscriptionInput,
} from './subscription.service';

export type ChangeEffective = 'immediately' | 'period_end';

export interface SubscriptionChangeInput extends UpdateSubscriptionInput {
  /** Default: a downgrade (a lower amount per billing period) at period end, anything else now. */
  effective?: ChangeEffective | null;
  /** Prorate as of this time; pass the preview's `prorationDate` so the invoice equals the preview. */
  prorationDate?: Date | null;
}

export interface ChangeResult {
  subscription: Subscription;
  /** Present when the change's payment needs the customer (declined card, 3-D Secure). */
  clientSecret: string | null;
}

export interface ChangePreview {
  effective: ChangeEffective;
  currency: string;
  amountDueNow: number;
  amountDueAtRenewal: number;
  renewsAt: Date | null;
  prorationDate: Date | null;
  lines: InvoicePreviewSnapshot['lines'];
  renewalLines: InvoicePreviewSnapshot['lines'];
}

/** What a change turns the subscription into, and the Stripe items update that does it. */
interface ChangePlan {
  row: Subscription;
  current: Price;
  target: Price;
  quantity: number;
  effective: ChangeEffective;
  prorationBehavior: ProrationBehavior;
  items: SubscriptionItemChange[];
  /** The full item list after the change (a schedule phase needs every item). */
  phaseItems: Array<{ priceId: string; quantity?: number }>;
  /** Nothing would change. */
  unchanged: boolean;
}

/**
 * Plan changes: across plans and intervals (metered items swapped, added or removed in the same
 * Stripe update), upgrades now with proration and Stripe's pending updates, downgrades at the
 * period end through a subscription schedule, previews from Stripe's invoice preview.
 *
 * Changes to one customer's subscriptions are serialised by the customer lock (also taken by the
 * subscription webhooks): a second change waits for the first and starts from its result, so
 * concurrent changes end in one consistent state, the same in Stripe and here.
 */
export class SubscriptionChangeService {
  private readonly subscriptions: SubscriptionService;

  constructor(
    private readonly em: EntityManager,
    private readonly gateway: StripeGateway,
    options: SubscriptionServiceOptions,
  ) {
    this.subscriptions = new SubscriptionService(em, gateway, options);
  }

  async change(customer: Customer | null, input: SubscriptionChangeInput): Promise<ChangeResult> {
    const gateway = this.gateway;
    const owned = await this.subscriptions.getOwnedOrThrow(customer, input.id);
    const target = await this.targetPrice(input);
    return this.em.transactional(async (tx) => {
      await lockCustomerSubscriptions(tx, owned.customer.id);
      const plan = await this.plan(tx, input, target);
      const { row } = plan;
      if (plan.unchanged) {
        // Asking for what the subscription already is replaces a scheduled change with nothing.
        if (row.pendingChange?.kind === 'scheduled') await this.releaseSchedule(tx, row);
        return { subscription: row, clientSecret: null };
      }
      if (plan.effective === 'period_end') {
        await this.schedule(tx, plan);
        return { subscription: row, clientSecret: null };
      }
      // A change made now replaces one scheduled for later.
      if (row.stripeScheduleId) await this.releaseSchedule(tx, row);
      const askedAt = stripeSecond(new Date());
      const changed = await gateway.changeSubscriptionItems({
        id: row.stripeSubscriptionId,
        items: plan.items,
        prorationBehavior: plan.prorationBehavior,
        ...(input.prorationDate ? { prorationDate: input.prorationDate } : {}),
        // Stripe's pending updates take price and quantity changes only: a change that removes an
        // item is refused by a failed payment instead, leaving the subscription as it was too.
        paymentBehavior: this.paymentBehavior(plan),
        // The row's version is part of the key: the same change retried is one request, a later change a new one.
        idempotencyKey: idempotencyKey(
          'subscription.change',
          row.id,
          row.updatedAt.getTime(),
          plan.target.id,
          plan.quantity,
          plan.prorationBehavior,
          input.prorationDate?.getTime() ?? 'now',
        ),
      });
      const subscription = await this.subscriptions.applySnapshot(tx, changed.subscription, { customer: customer! });
      // The change's invoice (a proration invoiced at once) came back with it: listed from now on.
      if (changed.latestInvoice) await new InvoiceService(tx).applySnapshot(tx, changed.latestInvoice, askedAt, customer!);
      return { subscription, clientSecret: changed.clientSecret };
    });
  }

  async preview(customer: Customer | null, input: SubscriptionChangeInput): Promise<ChangePreview> {
    const gateway = this.gateway;
    await this.subscriptions.getOwnedOrThrow(customer, input.id);
    const target = await this.targetPrice(input);
    const plan = await this.plan(this.em, input, target);
    const base = { customerId: customer!.stripeCustomerId!, subscriptionId: plan.row.stripeSubscriptionId };
    const none = { amountDue: 0, lines: [] as InvoicePreviewSnapshot['lines'] };
    if (plan.unchanged || plan.effective === 'period_end') {
      const renewal = plan.unchanged
        ? await gateway.previewSubscriptionInvoice(base)
        : await gateway.previewSubscriptionInvoice({ ...base, items: plan.items, prorationBehavior: 'none', previewMode: 'recurring' });
      const preview = this.previewOf(plan.effective, renewal.currency, none, renewal, null);
      // The new plan's first invoice comes when the current period ends.
      return plan.unchanged ? preview : { ...preview, renewsAt: plan.row.currentPeriodEnd ?? preview.renewsAt };
    }
    const prorationDate = input.prorationDate ?? undefined;
    const next = await gateway.previewSubscriptionInvoice({ ...base, items: plan.items, prorationBehavior: plan.prorationBehavior, prorationDate });
    // The change's own invoice when it is invoiced at once (always_invoice, a new interval);
    // otherwise its prorations wait for the next renewal, which `next` already is.
    if (next.billingReason !== 'subscription_update') {
      return this.previewOf(plan.effective, next.currency, none, next, prorationDate ?? prorationStart(next));
    }
    const recurring = await gateway.previewSubscriptionInvoice({ ...base, items: plan.items, prorationBehavior: plan.prorationBehavior, prorationDate, previewMode: 'recurring' });
    return this.previewOf(plan.effective, next.currency, next, recurring, prorationDate ?? prorationStart(next));
  }

  /** Drops a change scheduled for the period end (the subscription schedule is released). */
  async cancelPendingChange(customer: Customer | null, id: string): Promise<Subscription> {
    const owned = await this.subscriptions.getOwnedOrThrow(customer, id);
    return this.em.transactional(async (tx) => {
      await lockCustomerSubscriptions(tx, owned.customer.id);
      const row = await tx.findOneOrFail(Subscription, { id: owned.id }, { refresh: true });
      if (row.pendingChange?.kind === 'awaiting_payment') {
        throw new BillingError(
          ErrorCode.CONFLICT,
          'This change waits for its payment: it applies once the payment succeeds, and lapses by itself if it is not paid within 23 hours',
        );
      }
      if (row.stripeScheduleId || row.pendingChange) await this.releaseSchedule(tx, row);
      return row;
    });
  }

  /**
   * Releases the subscription's schedule (the subscription stays as it is now) and forgets the
   * change it held. Used before a change made now and before a cancellation.
   */
  async releaseSchedule(em: EntityManager, row: Subscription): Promise<void> {
    if (row.stripeScheduleId) await this.subscriptions.releaseSchedule(row.stripeScheduleId, row.id);
    row.stripeScheduleId = null;
    row.pendingChange = null;
    await em.flush();
  }

  /**
   * Keeps `pendingChange` in step with a subscription schedule (from its webhooks, ours or one
   * made in the billing portal or the Dashboard). `attachedScheduleId` is the subscription's
   * schedule as Stripe has it now: the schedule attached to it shows the change of its next
   * phase; one that is no longer attached (released, canceled, completed, or replaced) clears
   * what the row took from it.
   */
  async applySchedule(em: EntityManager, schedule: SubscriptionScheduleSnapshot, attachedScheduleId: string | null): Promise<Subscription | null> {
    if (!schedule.subscriptionId) return null;
    const row = await em.findOne(Subscription, { stripeSubscriptionId: schedule.subscriptionId });
    if (!row) return null;
    const open = schedule.status === 'active' || schedule.status === 'not_started';
    if (open && attachedScheduleId === schedule.id && LIVE_STATUSES.includes(row.status)) {
      row.stripeScheduleId = schedule.id;
      row.pendingChange = await this.pendingOfSchedule(em, schedule);
    } else if (row.stripeScheduleId === schedule.id) {
      row.stripeScheduleId = attachedScheduleId;
      if (row.pendingChange?.kind === 'scheduled') row.pendingChange = null;
    }
    await em.flush();
    return row;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async pendingOfSchedule(em: EntityManager, schedule: SubscriptionScheduleSnapshot): Promise<PendingChangeSnapshot | null> {
    const current = schedule.currentPhase;
    const index = current ? schedule.phases.findIndex((p) => p.startDate.getTime() === current.startDate.getTime()) : -1;
    const next = index >= 0 ? schedule.phases[index + 1] : schedule.status === 'not_started' ? schedule.phases[0] : undefined;
    if (!next) return null;
    const prices = await em.find(Price, { stripePriceId: { $in: next.items.map((i) => i.priceId) } });
    const licensed = prices.find((p) => p.usageType === 'licensed');
    if (!licensed) return null;
    const item = next.items.find((i) => i.priceId === licensed.stripePriceId);
    return { kind: 'scheduled', priceId: licensed.id, quantity: item?.quantity ?? 1, effectiveAt: next.startDate.toISOString(), expiresAt: null };
  }

  private async targetPrice(input: SubscriptionChangeInput): Promise<Price | null> {
    assertId(input.id, 'id');
    if (input.quantity != null) checkQuantity(input.quantity);
    if (!input.plan && !input.priceId) {
      if (input.quantity == null) throw BillingError.badInput('Give a new plan, priceId or quantity');
      return null;
    }
    return this.subscriptions.resolveRecurringPrice(input);
  }

  /** Reads the subscription (fresh, inside the caller's lock when there is one) and works out the change. */
  private async plan(em: EntityManager, input: SubscriptionChangeInput, targetPrice: Price | null): Promise<ChangePlan> {
    const row = await em.findOneOrFail(Subscription, { id: input.id }, { refresh: true });
    if (!LIVE_STATUSES.includes(row.status)) throw new BillingError(ErrorCode.CONFLICT, `A ${row.status} subscription cannot be changed`);
    const current = await em.findOneOrFail(Price, { id: row.price.id });
    const target = targetPrice ?? current;
    const quantity = input.quantity ?? row.quantity;
    const unchanged = target.id === current.id && quantity === row.quantity;
    const cheaper = (target.unitAmount ?? 0) * quantity < (current.unitAmount ?? 0) * row.quantity;
    const effective: ChangeEffective = input.effective ?? (cheaper ? 'period_end' : 'immediately');
    if (effective === 'period_end' && row.status === 'incomplete') {
      throw new BillingError(ErrorCode.CONFLICT, 'The first payment of this subscription is still due; change it now or once it is paid');
    }
    if (effective === 'period_end' && row.cancelAtPeriodEnd) {
      throw new BillingError(ErrorCode.CONFLICT, 'This subscription ends at the period end; resume it before scheduling a change');
    }
    const prorationBehavior: ProrationBehavior = input.prorationBehavior ?? (cheaper ? 'create_prorations' : 'always_invoice');

    const licensed = row.items.find((i) => !i.meter);
    if (!licensed) throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Subscription has no licensed item');
    const metered = await meteredPricesOfPlan(em, target);
    const meterIds = metered.map((p) => p.meter?.id).filter((id): id is string => Boolean(id));
    const meters = meterIds.length ? await em.find(Meter, { id: { $in: meterIds } }) : [];
    const meterOf = (p: Price) => meters.find((m) => m.id === p.meter?.id)?.eventName ?? null;

    const items: SubscriptionItemChange[] = [{ itemId: licensed.stripeItemId, priceId: target.stripePriceId!, quantity }];
    const taken = new Set<string>();
    for (const item of row.items.filter((i) => i.meter)) {
      // The same meter keeps its item (the price swaps), so usage continues on it.
      const match = metered.find((p) => !taken.has(p.id) && meterOf(p) === item.meter);
      if (match) {
        taken.add(match.id);
        if (match.stripePriceId !== item.stripePriceId) items.push({ itemId: item.stripeItemId, priceId: match.stripePriceId! });
      } else {
        items.push({ itemId: item.stripeItemId, deleted: true });
      }
    }
    for (const price of metered) if (!taken.has(price.id)) items.push({ priceId: price.stripePriceId! });
    const phaseItems = [{ priceId: target.stripePriceId!, quantity }, ...metered.map((p) => ({ priceId: p.stripePriceId! }))];
    return { row, current, target, quantity, effective, prorationBehavior, items, phaseItems, unchanged };
  }

  private paymentBehavior(plan: ChangePlan): PaymentBehavior {
    // Before the first payment (incomplete) or during a trial there is no paid plan to keep:
    // the change applies, and whatever it invoices is paid with the rest.
    if (plan.row.status === 'incomplete' || plan.row.status === 'trialing') return 'allow_incomplete';
    return plan.items.some((i) => i.deleted) ? 'error_if_incomplete' : 'pending_if_incomplete';
  }

  /**
   * A change at the period end: the subscription's schedule (made from the subscription when it
   * has none) gets two phases: what it has now until the period end, read from the licensed
   * item's `current_period_end` (since API 2025-03-31 periods live on items), then the new plan
   * with its metered prices for one period, after which the schedule releases the subscription.
   */
  private async schedule(em: EntityManager, plan: ChangePlan): Promise<void> {
    const gateway = this.gateway;
    const { row } = plan;
    const version = row.updatedAt.getTime();
    const subscription = await gateway.retrieveSubscription(row.stripeSubscriptionId);
    const licensedItem = subscription.items.find((i) => i.price.recurring?.usageType !== 'metered') ?? subscription.items[0];
    const periodEnd = licensedItem?.currentPeriodEnd ?? subscription.currentPeriodEnd;
    if (!periodEnd) throw new BillingError(ErrorCode.CONFLICT, 'This subscription has no current period to end');
    let schedule = subscription.scheduleId ? await gateway.retrieveSchedule(subscription.scheduleId) : null;
    if (!schedule || !(schedule.status === 'active' || schedule.status === 'not_started')) {
      schedule = await gateway.createScheduleFromSubscription({
        subscriptionId: row.stripeSubscriptionId,
        idempotencyKey: idempotencyKey('schedule.create', row.id, version),
      });
    }
    const start = schedule.currentPhase?.startDate ?? schedule.phases[0]?.startDate ?? subscription.currentPeriodStart!;
    const interval = plan.target.interval ?? 'month';
    const updated = await gateway.updateSchedulePhases({
      id: schedule.id,
      phases: [
        {
          items: subscription.items.map((i) => ({ priceId: i.price.id, ...(i.quantity !== null ? { quantity: i.quantity } : {}) })),
          startDate: start,
          endDate: periodEnd,
        },
        { items: plan.phaseItems, startDate: periodEnd, duration: { interval, intervalCount: plan.target.intervalCount ?? 1 } },
      ],
      endBehavior: 'release',
      idempotencyKey: idempotencyKey('schedule.phases', row.id, version, schedule.id, plan.target.id, plan.quantity),
    });
    row.stripeScheduleId = updated.id;
    row.pendingChange = { kind: 'scheduled', priceId: plan.target.id, quantity: plan.quantity, effectiveAt: periodEnd.toISOString(), expiresAt: null };
    await em.flush();
  }

  private previewOf(
    effective: ChangeEffective,
    currency: string,
    now: { amountDue: number; lines: InvoicePreviewSnapshot['lines'] },
    renewal: InvoicePreviewSnapshot,
    prorationDate: Date | null,
  ): ChangePreview {
    return {
      effective,
      currency,
      amountDueNow: now.amountDue,
      amountDueAtRenewal: renewal.amountDue,
      renewsAt: renewal.periodStart,
      prorationDate,
      lines: now.lines,
      renewalLines: renewal.lines,
    };
  }
}

/** When the prorations of a preview start: the time Stripe prorated as of. */
function prorationStart(preview: InvoicePreviewSnapshot): Date | null {
  return preview.lines.find((l) => l.proration)?.periodStart ?? null;
}

function checkQuantity(quantity: number): void {
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw BillingError.badInput(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`, 'quantity');
  }
}
