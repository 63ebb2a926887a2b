/**
 * Changing a subscription's items, as Stripe does it: a change plan (items updated, added or
 * deleted), the invoice lines it produces, applying it, and pending updates.
 *
 * - Licensed items are prorated for the rest of the period (`proration_behavior`): a credit for
 *   unused time on the old price, a charge for the remaining time on the new one. With
 *   `create_prorations` the lines wait for the next invoice, with `always_invoice` they are
 *   invoiced at once, with `none` there are none.
 * - A metered price that leaves the subscription (item deleted or its price swapped) has its
 *   usage up to the change billed at the old price: on the invoice created now with
 *   `always_invoice` or a new cycle, otherwise on the next invoice. Usage is never dropped.
 * - Changing the interval restarts the billing cycle now: unused licensed time is credited,
 *   usage so far is billed, and the new period is charged in full, on one invoice.
 * - `payment_behavior=pending_if_incomplete`: when that invoice is not paid at once (declined
 *   card, 3-D Secure), the subscription keeps its items and carries `pending_update`; paying the
 *   invoice applies the change, and after 23 hours it expires.
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, int, str } from '../params';
import { periodAt } from '../periods';
import { publicCopy, type Obj, type Store } from '../store';
import type { LineSpec } from './invoice-lines';
import { createInvoice } from './invoice-model';
import { attemptInvoicePayment, finalizeInvoice } from './invoice-payments';
import {
  checkRecurring,
  currentPeriod,
  cycleOf,
  defaultPaymentMethod,
  INCOMPLETE_WINDOW,
  itemUsageLine,
  money,
  newItem,
  productName,
  renderItem,
  setPeriod,
  type Period,
} from './subscription-model';

export interface ItemChange {
  /** The existing item; null when the change adds one. */
  itemId: string | null;
  /** The item after the change (preassigned for added items); null when deleted. */
  newItemId: string | null;
  oldPriceId: string | null;
  oldQty: number;
  /** Null when the item is deleted. */
  priceId: string | null;
  quantity: number;
  metadata?: Obj;
}

/** A change to a subscription's items, plain JSON so a pending update survives a restart. */
export interface ChangePlan {
  changes: ItemChange[];
  /** The interval changes: the billing cycle restarts at `at`, invoiced at once. */
  cycleReset: boolean;
  /** When the change takes effect (`proration_date` or now). */
  at: number;
  /** The pending update's invoice. */
  invoice?: string;
  /**
   * When usage starts to count for metered prices the plan brings in. Default `at + 1`: the
   * change's own second was billed at the old price. A phase starting at a period end: `at`.
   */
  usageFrom?: number;
}

export interface ChangeLines {
  lines: LineSpec[];
  /** Whether the lines are invoiced now (else they wait for the next invoice). */
  invoiceNow: boolean;
  /** The period the immediate invoice covers. */
  period: Period;
}

const PENDING_UPDATE_PARAMS = ['items', 'payment_behavior', 'proration_behavior', 'proration_date', 'billing_cycle_anchor', 'trial_end', 'trial_from_plan', 'add_invoice_items', 'expand'];
const PENDING_UPDATE_ITEM_PARAMS = ['id', 'price', 'plan', 'quantity'];
const PRORATION_BEHAVIORS = ['create_prorations', 'always_invoice', 'none'];
const PAYMENT_BEHAVIORS = ['default_incomplete', 'allow_incomplete', 'error_if_incomplete', 'pending_if_incomplete'];

function priceOf(store: Store, id: string): Obj {
  return store.get('price', id) as Obj;
}

function isMeteredPrice(price: Obj | null | undefined): boolean {
  return price?.recurring?.usage_type === 'metered';
}

export function readProrationBehavior(p: Obj, param = 'proration_behavior'): string {
  const v = str(p, param) ?? 'create_prorations';
  if (!PRORATION_BEHAVIORS.includes(v)) throw invalidRequest(`Invalid ${param}: must be one of ${PRORATION_BEHAVIORS.join(', ')}`, param);
  return v;
}

export function readPaymentBehavior(p: Obj): string {
  const v = str(p, 'payment_behavior') ?? 'allow_incomplete';
  if (!PAYMENT_BEHAVIORS.includes(v)) throw invalidRequest(`Invalid payment_behavior: must be one of ${PAYMENT_BEHAVIORS.join(', ')}`, 'payment_behavior');
  return v;
}

/** `proration_date`: when the change is prorated from; within the current period. */
export function readProrationDate(store: Store, sub: Obj, p: Obj, param = 'proration_date'): number {
  const at = int(p, param);
  if (at === undefined) return store.now();
  const period = currentPeriod(sub);
  if (at < period.start || at > period.end) {
    throw invalidRequest('proration_date must be within the current period of the subscription.', param);
  }
  return at;
}

/** Stripe refuses everything but price and quantity changes in a pending update. */
export function checkPendingUpdateParams(p: Obj): void {
  const extra = Object.keys(p).filter((k) => !PENDING_UPDATE_PARAMS.includes(k));
  const items = Array.isArray(p.items) ? (p.items as Obj[]) : [];
  items.forEach((it, i) => {
    for (const k of Object.keys(it ?? {})) if (!PENDING_UPDATE_ITEM_PARAMS.includes(k)) extra.push(`items[${i}][${k}]`);
  });
  if (extra.length) {
    throw invalidRequest(
      `When payment_behavior is pending_if_incomplete, only these parameters are supported: ${PENDING_UPDATE_PARAMS.join(', ')} (items with id, price and quantity). Remove: ${extra.join(', ')}.`,
      extra[0],
    );
  }
}

/** Reads `items[]` of a subscription update into a change plan, validating it as Stripe does. */
export function readChangePlan(store: Store, sub: Obj, raw: Obj[], at: number, param = 'items'): ChangePlan {
  const changes: ItemChange[] = [];
  raw.forEach((it: Obj, i) => {
    const id = str(it, 'id');
    const existing = id ? (sub._items as Obj[]).find((x) => x.id === id) : undefined;
    if (id && !existing) throw invalidRequest(`Invalid subscription_item: ${id}`, `${param}[${i}][id]`, 'resource_missing');
    if (existing && changes.some((c) => c.itemId === existing.id)) throw invalidRequest(`The subscription item ${id} was given twice.`, `${param}[${i}][id]`);
    if (existing && bool(it, 'deleted', `${param}[${i}][deleted]`)) {
      changes.push({ itemId: existing.id, newItemId: null, oldPriceId: existing.price, oldQty: existing.quantity ?? 1, priceId: null, quantity: 0 });
      return;
    }
    const priceId = str(it, 'price') ?? str(it, 'plan');
    const price = priceId ? store.get('price', priceId) : undefined;
    if (priceId && !price) throw noSuch('price', priceId, `${param}[${i}][price]`);
    if (price) checkRecurring(price, `${param}[${i}][price]`);
    if (price && price.currency !== sub.currency) throw invalidRequest('All prices on a subscription must have the same currency.', `${param}[${i}][price]`);
    const quantity = int(it, 'quantity', `${param}[${i}][quantity]`);
    const target = price ?? (existing ? priceOf(store, existing.price) : undefined);
    if (isMeteredPrice(target) && quantity !== undefined) {
      throw invalidRequest(`Quantity should not be specified where usage_type is \`metered\`. Remove quantity from \`${param}[${i}]\`.`, `${param}[${i}][quantity]`);
    }
    if (quantity !== undefined && quantity < 0) throw invalidRequest('Invalid integer: quantity must be at least 0.', `${param}[${i}][quantity]`);
    if (existing) {
      changes.push({
        itemId: existing.id,
        newItemId: existing.id,
        oldPriceId: existing.price,
        oldQty: existing.quantity ?? 1,
        priceId: price?.id ?? existing.price,
        quantity: quantity ?? existing.quantity ?? 1,
        ...('metadata' in it ? { metadata: applyMetadata(existing.metadata, it) } : {}),
      });
      return;
    }
    if (!price) throw invalidRequest(`Missing required param: ${param}[${i}][price].`, `${param}[${i}][price]`, 'parameter_missing');
    changes.push({ itemId: null, newItemId: newId('si_', 14), oldPriceId: null, oldQty: 0, priceId: price.id, quantity: quantity ?? 1, metadata: applyMetadata({}, it) });
  });
  return finishPlan(store, sub, changes, at, param);
}

/**
 * The plan that turns the subscription's items into `items` (a schedule phase's): an item with
 * the same price keeps it, one of the same kind (licensed, or metered on the same meter) swaps
 * its price, the rest are added or deleted.
 */
export function planToItems(store: Store, sub: Obj, items: { price: string; quantity: number | null }[], at: number): ChangePlan {
  const left = [...(sub._items as Obj[])];
  const changes: ItemChange[] = [];
  const take = (match: (i: Obj) => boolean): Obj | undefined => {
    const idx = left.findIndex(match);
    return idx < 0 ? undefined : left.splice(idx, 1)[0];
  };
  for (const wanted of items) {
    const price = priceOf(store, wanted.price);
    const meter = price.recurring?.meter ?? null;
    const same = take((i) => i.price === price.id);
    const kin =
      same ??
      take((i) => {
        const p = priceOf(store, i.price);
        return isMeteredPrice(p) ? isMeteredPrice(price) && p.recurring.meter === meter : !isMeteredPrice(price);
      });
    const quantity = isMeteredPrice(price) ? 1 : (wanted.quantity ?? 1);
    if (kin) changes.push({ itemId: kin.id, newItemId: kin.id, oldPriceId: kin.price, oldQty: kin.quantity ?? 1, priceId: price.id, quantity });
    else changes.push({ itemId: null, newItemId: newId('si_', 14), oldPriceId: null, oldQty: 0, priceId: price.id, quantity, metadata: {} });
  }
  for (const gone of left) changes.push({ itemId: gone.id, newItemId: null, oldPriceId: gone.price, oldQty: gone.quantity ?? 1, priceId: null, quantity: 0 });
  return finishPlan(store, sub, changes, at, 'items');
}

function finishPlan(store: Store, sub: Obj, changes: ItemChange[], at: number, param: string): ChangePlan {
  const after = itemsAfter(sub, changes);
  if (after.length === 0) throw invalidRequest('A subscription must have at least one active plan.', param);
  const prices = after.map((a) => priceOf(store, a.priceId));
  const first = prices[0].recurring;
  for (const [i, price] of prices.entries()) {
    if (price.recurring.interval !== first.interval || price.recurring.interval_count !== first.interval_count) {
      throw invalidRequest('All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.', `${param}[${i}][price]`);
    }
    if (prices.findIndex((p) => p.id === price.id) !== i) {
      throw invalidRequest(`Cannot add multiple subscription items with the same price: ${price.id}.`, `${param}[${i}][price]`);
    }
  }
  const cycle = cycleOf(store, sub);
  const cycleReset = first.interval !== cycle.interval || first.interval_count !== cycle.count;
  return { changes, cycleReset, at };
}

/** The items a plan leaves: existing ones it does not delete, in order, then added ones. */
function itemsAfter(sub: Obj, changes: ItemChange[]): { itemId: string; priceId: string; quantity: number }[] {
  const out: { itemId: string; priceId: string; quantity: number }[] = [];
  for (const item of sub._items as Obj[]) {
    const change = changes.find((c) => c.itemId === item.id);
    if (!change) out.push({ itemId: item.id, priceId: item.price, quantity: item.quantity ?? 1 });
    else if (change.priceId) out.push({ itemId: item.id, priceId: change.priceId, quantity: change.quantity });
  }
  for (const c of changes) if (!c.itemId && c.priceId) out.push({ itemId: c.newItemId!, priceId: c.priceId, quantity: c.quantity });
  return out;
}

function dateOf(at: number): string {
  return new Date(at * 1000).toISOString().slice(0, 10);
}

function creditLine(store: Store, price: Obj, qty: number, fraction: number, period: Period, item: string, at: number): LineSpec {
  return {
    amount: -Math.round(price.unit_amount * qty * fraction),
    description: `Unused time on ${qty} \u00d7 ${productName(store, price)} after ${dateOf(at)}`,
    price,
    quantity: qty,
    period,
    subscriptionItem: item,
    proration: true,
  };
}

function chargeLine(store: Store, price: Obj, qty: number, fraction: number, period: Period, item: string, at: number): LineSpec {
  return {
    amount: Math.round(price.unit_amount * qty * fraction),
    description: `Remaining time on ${qty} \u00d7 ${productName(store, price)} after ${dateOf(at)}`,
    price,
    quantity: qty,
    period,
    subscriptionItem: item,
    proration: true,
  };
}

/** The invoice lines a plan produces and whether they are invoiced now. Changes nothing. */
export function changeLines(store: Store, sub: Obj, plan: ChangePlan, prorationBehavior: string): ChangeLines {
  const period = currentPeriod(sub);
  const at = plan.at;
  // Meter events carry whole seconds: those of the change's own second still count for the old price.
  const usageUntil = { start: period.start, end: at + 1 };
  const fraction = Math.max(0, Math.min(1, (period.end - at) / (period.end - period.start)));
  const prorate = prorationBehavior !== 'none' && sub.status !== 'trialing';
  const rest = { start: at, end: period.end };
  const lines: LineSpec[] = [];
  if (plan.cycleReset) {
    const after = itemsAfter(sub, plan.changes);
    const first = priceOf(store, after[0].priceId).recurring;
    const next = periodAt(at, first.interval, first.interval_count, 0);
    for (const item of sub._items as Obj[]) {
      const price = priceOf(store, item.price);
      if (isMeteredPrice(price)) {
        const usage = itemUsageLine(store, sub, item, price, usageUntil);
        if (usage) lines.push(usage);
      } else if (prorate && sub.status !== 'trialing' && fraction > 0) {
        lines.push(creditLine(store, price, item.quantity ?? 1, fraction, rest, item.id, at));
      }
    }
    for (const a of after) {
      const price = priceOf(store, a.priceId);
      if (isMeteredPrice(price)) continue;
      lines.push({
        amount: sub.status === 'trialing' ? 0 : price.unit_amount * a.quantity,
        description: `${a.quantity} \u00d7 ${productName(store, price)} (at ${money(price.unit_amount, price.currency)} / ${price.recurring.interval})`,
        price,
        quantity: a.quantity,
        period: next,
        subscriptionItem: a.itemId,
      });
    }
    return { lines, invoiceNow: true, period: next };
  }
  for (const change of plan.changes) {
    const oldPrice = change.oldPriceId ? priceOf(store, change.oldPriceId) : null;
    const newPrice = change.priceId ? priceOf(store, change.priceId) : null;
    if (oldPrice && isMeteredPrice(oldPrice) && newPrice?.id !== oldPrice.id) {
      const item = (sub._items as Obj[]).find((i) => i.id === change.itemId)!;
      const usage = itemUsageLine(store, sub, item, oldPrice, usageUntil);
      if (usage) lines.push(usage);
    }
    if (!prorate || fraction <= 0) continue;
    const oldAmount = oldPrice && !isMeteredPrice(oldPrice) ? oldPrice.unit_amount * change.oldQty : 0;
    const newAmount = newPrice && !isMeteredPrice(newPrice) ? newPrice.unit_amount * change.quantity : 0;
    if (oldPrice?.id === newPrice?.id && change.oldQty === change.quantity) continue;
    if (oldAmount === newAmount && oldPrice?.id === newPrice?.id) continue;
    const itemId = change.newItemId ?? change.itemId!;
    if (oldAmount > 0) lines.push(creditLine(store, oldPrice!, change.oldQty, fraction, rest, itemId, at));
    if (newAmount > 0) lines.push(chargeLine(store, newPrice!, change.quantity, fraction, rest, itemId, at));
  }
  return { lines, invoiceNow: prorationBehavior === 'always_invoice' && lines.length > 0, period: rest };
}

/** Makes the plan's changes to the subscription's items (and restarts the cycle when asked). */
export function applyPlan(store: Store, sub: Obj, plan: ChangePlan): void {
  const period = currentPeriod(sub);
  for (const change of plan.changes) {
    if (change.itemId && !change.priceId) {
      sub._items = (sub._items as Obj[]).filter((x) => x.id !== change.itemId);
      store.remove('subscription_item', change.itemId);
      continue;
    }
    const price = priceOf(store, change.priceId!);
    if (change.itemId) {
      const item = (sub._items as Obj[]).find((x) => x.id === change.itemId);
      if (!item) continue;
      if (item.price !== price.id && isMeteredPrice(price)) item._usage_from = plan.usageFrom ?? plan.at + 1;
      item.price = price.id;
      if (!isMeteredPrice(price)) item.quantity = change.quantity;
      if (change.metadata) item.metadata = change.metadata;
      continue;
    }
    const item = newItem(store, sub, { id: change.newItemId!, price, quantity: change.quantity, metadata: change.metadata ?? {} }, period, plan.at);
    sub._items.push(item);
  }
  if (plan.cycleReset) {
    const { interval, count } = cycleOf(store, sub);
    for (const item of sub._items as Obj[]) item._usage_from = Math.max(item._usage_from ?? 0, plan.usageFrom ?? plan.at + 1);
    sub._anchor = plan.at;
    sub._cycle = 0;
    sub.billing_cycle_anchor = plan.at;
    setPeriod(sub, periodAt(plan.at, interval, count, 0));
  }
}

/** The items as they will be once the plan applies, rendered (for `pending_update.subscription_items`). */
function renderItemsAfter(store: Store, sub: Obj, plan: ChangePlan): Obj[] {
  const period = currentPeriod(sub);
  return itemsAfter(sub, plan.changes).map((a) => {
    const existing = (sub._items as Obj[]).find((i) => i.id === a.itemId);
    const base: Obj = existing
      ? { ...existing, price: a.priceId, quantity: a.quantity }
      : {
          id: a.itemId,
          object: 'subscription_item',
          billing_thresholds: null,
          created: plan.at,
          current_period_end: period.end,
          current_period_start: period.start,
          discounts: [],
          metadata: {},
          plan: null,
          price: a.priceId,
          quantity: a.quantity,
          subscription: sub.id,
          tax_rates: [],
        };
    return renderItem(store, base);
  });
}

/** Drops a pending update: its invoice is voided and the subscription keeps its items. */
export function discardPendingUpdate(store: Store, sub: Obj, event: string | null): void {
  if (!sub.pending_update) return;
  const inv = sub._pending_plan?.invoice ? store.get('invoice', sub._pending_plan.invoice) : undefined;
  if (inv && inv.status === 'open') {
    inv.status = 'void';
    inv.status_transitions.voided_at = store.now();
    inv.amount_remaining = 0;
    store.emit('invoice.voided', inv, { status: 'open' });
  }
  const prev = { pending_update: publicCopy(sub.pending_update) };
  sub.pending_update = null;
  delete sub._pending_plan;
  if (event) {
    store.emit(event, sub, prev);
    store.emit('customer.subscription.updated', sub, prev);
  }
}

/** Applies a pending update whose invoice was just paid. */
export function applyPendingUpdate(store: Store, sub: Obj, inv: Obj): boolean {
  const plan = sub._pending_plan as ChangePlan | undefined;
  if (!plan || plan.invoice !== inv.id) return false;
  applyPlan(store, sub, plan);
  sub.pending_update = null;
  delete sub._pending_plan;
  store.emit('customer.subscription.pending_update_applied', sub);
  return true;
}

/**
 * Changes the items of a subscription. Returns normally when the change applied or became a
 * pending update; throws a card error (and changes nothing) for `error_if_incomplete`.
 */
export function changeItems(store: Store, sub: Obj, plan: ChangePlan, prorationBehavior: string, paymentBehavior: string): void {
  // A new change replaces a pending one, as on Stripe.
  discardPendingUpdate(store, sub, null);
  const { lines, invoiceNow, period } = changeLines(store, sub, plan, prorationBehavior);
  if (!invoiceNow) {
    applyPlan(store, sub, plan);
    sub._pending.push(...lines);
    return;
  }
  const waitsForPayment = paymentBehavior === 'pending_if_incomplete' || paymentBehavior === 'error_if_incomplete';
  if (!waitsForPayment) applyPlan(store, sub, plan);
  const previousInvoice = sub.latest_invoice;
  const inv = createInvoice(store, {
    customer: store.get('customer', sub.customer) as Obj,
    subscription: sub,
    currency: sub.currency,
    lines,
    billingReason: 'subscription_update',
    periodStart: period.start,
    periodEnd: period.end,
  });
  if (paymentBehavior === 'pending_if_incomplete') inv._pending_update = true;
  sub.latest_invoice = inv.id;
  finalizeInvoice(store, inv);
  if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
  if (!waitsForPayment || inv.status === 'paid') {
    if (waitsForPayment) applyPlan(store, sub, plan);
    return;
  }
  if (paymentBehavior === 'error_if_incomplete') {
    sub.latest_invoice = previousInvoice;
    const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
    if (pi?.status === 'requires_action') {
      throw cardError('Your card was declined. This transaction requires authentication.', 'card_declined', 'authentication_required');
    }
    throw cardError(pi?.last_payment_error?.message ?? 'Your card was declined.', 'card_declined', pi?.last_payment_error?.decline_code ?? 'generic_decline');
  }
  sub.pending_update = {
    billing_cycle_anchor: plan.cycleReset ? plan.at : null,
    expires_at: store.now() + INCOMPLETE_WINDOW,
    prebilled_items: null,
    subscription_items: renderItemsAfter(store, sub, plan),
    trial_end: null,
    trial_from_plan: null,
  };
  sub._pending_plan = { ...plan, invoice: inv.id };
}
