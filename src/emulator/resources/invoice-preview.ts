/**
 * `POST /v1/invoices/create_preview`: the invoice a subscription change would produce, computed
 * by the same code as the change itself and stored nowhere.
 *
 * With `subscription_details.items` it previews the change: the invoice created at once when the
 * change is invoiced immediately (`proration_behavior=always_invoice` with something to prorate,
 * or a new interval), otherwise the next renewal invoice with the change's prorations on it.
 * Without changes it previews the next renewal, following the subscription's schedule when a
 * phase starts then.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { arr, obj, str } from '../params';
import { periodAt } from '../periods';
import type { Router } from '../router';
import { out } from '../router';
import type { Obj, Store } from '../store';
import type { LineSpec } from './invoice-lines';
import { currentPeriod, cycleOf, getSubscription, itemUsageLine, money, productName, type Period } from './subscription-model';
import { changeLines, planToItems, readChangePlan, readProrationBehavior, readProrationDate, type ChangePlan } from './subscription-update';

function previewLine(l: LineSpec, currency: string, sub: Obj): Obj {
  return {
    id: newId('il_tmp_'),
    object: 'line_item',
    amount: l.amount,
    currency,
    description: l.description,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice: null,
    livemode: false,
    metadata: {},
    parent: {
      invoice_item_details: null,
      subscription_item_details: {
        invoice_item: null,
        proration: l.proration === true,
        proration_details: { credited_items: null },
        subscription: sub.id,
        subscription_item: l.subscriptionItem ?? null,
      },
      type: 'subscription_item_details',
    },
    period: l.period,
    pretax_credit_amounts: [],
    pricing: l.price
      ? { price_details: { price: l.price.id, product: l.price.product }, type: 'price_details', unit_amount_decimal: l.price.unit_amount_decimal }
      : null,
    quantity: l.quantity,
    subtotal: l.amount,
    taxes: [],
  };
}

function previewInvoice(store: Store, sub: Obj, lines: LineSpec[], reason: string, period: Period): Obj {
  const customer = store.get('customer', sub.customer) as Obj;
  const data = lines.map((l) => previewLine(l, sub.currency, sub));
  const total = lines.reduce((s, l) => s + l.amount, 0);
  const now = store.now();
  return {
    id: `upcoming_${newId('in_')}`,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Tollgate Emulator',
    amount_due: Math.max(0, total),
    amount_overpaid: 0,
    amount_paid: 0,
    amount_remaining: Math.max(0, total),
    amount_shipping: 0,
    attempt_count: 0,
    attempted: false,
    auto_advance: false,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    billing_reason: reason,
    collection_method: 'charge_automatically',
    created: now,
    currency: sub.currency,
    customer: customer.id,
    customer_email: customer.email ?? null,
    customer_name: customer.name ?? null,
    description: null,
    discounts: [],
    due_date: null,
    ending_balance: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    lines: { object: 'list', data, has_more: false, total_count: data.length, url: '/v1/invoices/upcoming/lines' },
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: null,
    parent: {
      quote_details: null,
      subscription_details: { metadata: { ...sub.metadata }, subscription: sub.id },
      type: 'subscription_details',
    },
    period_end: period.end,
    period_start: period.start,
    starting_balance: 0,
    status: 'draft',
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subtotal: total,
    subtotal_excluding_tax: total,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
  };
}

/** The next renewal invoice once `plan` applied: pending lines, deferred change lines, usage so far, the next period in advance. */
function renewalLines(store: Store, sub: Obj, plan: ChangePlan | null, deferred: LineSpec[] | null): { lines: LineSpec[]; period: Period } {
  const period = currentPeriod(sub);
  const now = store.now();
  // A change made now bills the usage of the prices it removes in its own (deferred) lines.
  const changed = new Set(deferred ? (plan?.changes ?? []).filter((c) => c.priceId !== c.oldPriceId).map((c) => c.itemId) : []);
  const lines: LineSpec[] = [...(sub._pending as LineSpec[]), ...(deferred ?? [])];
  for (const item of sub._items as Obj[]) {
    if (changed.has(item.id)) continue;
    // Usage so far, this second's meter events included.
    const usage = itemUsageLine(store, sub, item, store.get('price', item.price) as Obj, { start: period.start, end: Math.min(now + 1, period.end) });
    if (usage) lines.push(usage);
  }
  const after = afterItems(store, sub, plan);
  const first = store.get('price', after[0].price)!.recurring;
  const cycle = cycleOf(store, sub);
  const next =
    first.interval === cycle.interval && first.interval_count === cycle.count
      ? periodAt(sub._anchor, cycle.interval, cycle.count, sub._cycle + 1)
      : periodAt(period.end, first.interval, first.interval_count, 0);
  for (const a of after) {
    const price = store.get('price', a.price) as Obj;
    if (price.recurring.usage_type === 'metered') continue;
    lines.push({
      amount: price.unit_amount * a.quantity,
      description: `${a.quantity} \u00d7 ${productName(store, price)} (at ${money(price.unit_amount, price.currency)} / ${price.recurring.interval})`,
      price,
      quantity: a.quantity,
      period: next,
      subscriptionItem: a.id,
    });
  }
  return { lines, period: next };
}

function afterItems(store: Store, sub: Obj, plan: ChangePlan | null): { id: string; price: string; quantity: number }[] {
  const items = (sub._items as Obj[]).map((i) => ({ id: i.id as string, price: i.price as string, quantity: (i.quantity ?? 1) as number }));
  if (!plan) return items;
  const out: { id: string; price: string; quantity: number }[] = [];
  for (const i of items) {
    const c = plan.changes.find((x) => x.itemId === i.id);
    if (!c) out.push(i);
    else if (c.priceId) out.push({ id: i.id, price: c.priceId, quantity: c.quantity });
  }
  for (const c of plan.changes) if (!c.itemId && c.priceId) out.push({ id: c.newItemId!, price: c.priceId, quantity: c.quantity });
  return out;
}

/** `preview_mode=recurring`: a regular cycle's invoice once the plan applied, licensed items only, no prorations. */
function recurringLines(store: Store, sub: Obj, plan: ChangePlan | null): { lines: LineSpec[]; period: Period } {
  const after = afterItems(store, sub, plan);
  const first = store.get('price', after[0].price)!.recurring;
  const period =
    plan?.cycleReset === true
      ? periodAt(plan.at, first.interval, first.interval_count, 1)
      : periodAt(sub._anchor, first.interval, first.interval_count, sub._cycle + 1);
  const lines = after.map((a): LineSpec => {
    const price = store.get('price', a.price) as Obj;
    const metered = price.recurring.usage_type === 'metered';
    return {
      amount: metered ? 0 : price.unit_amount * a.quantity,
      description: metered
        ? productName(store, price)
        : `${a.quantity} \u00d7 ${productName(store, price)} (at ${money(price.unit_amount, price.currency)} / ${price.recurring.interval})`,
      price,
      quantity: metered ? 0 : a.quantity,
      period,
      subscriptionItem: a.id,
    };
  });
  return { lines, period };
}

/** The schedule phase that starts when the current period ends, as a plan. */
function scheduledPlan(store: Store, sub: Obj): ChangePlan | null {
  const sched = sub.schedule ? store.get('subscription_schedule', sub.schedule) : undefined;
  if (!sched || sched.status !== 'active') return null;
  const next = sched.phases[sched._phase + 1];
  const period = currentPeriod(sub);
  if (!next || sched.phases[sched._phase].end_date !== period.end) return null;
  return planToItems(store, sub, next.items, period.end);
}

export function registerInvoicePreview(router: Router, store: Store): void {
  router.add('POST', '/v1/invoices/create_preview', (ctx) => {
    const p = ctx.params;
    const subId = str(p, 'subscription');
    if (!subId) throw invalidRequest('The emulator previews subscription invoices: pass subscription.', 'subscription', 'parameter_missing');
    const sub = getSubscription(store, subId);
    const customer = str(p, 'customer');
    if (customer && customer !== sub.customer) throw noSuch('subscription', subId, 'subscription');
    if (['canceled', 'incomplete_expired'].includes(sub.status)) {
      throw invalidRequest('No upcoming invoices for a canceled subscription.', 'subscription', 'invoice_upcoming_none');
    }
    const details = obj(p, 'subscription_details') ?? {};
    const items = arr(details, 'items');
    const mode = str(p, 'preview_mode') ?? 'next';
    if (mode !== 'next' && mode !== 'recurring') throw invalidRequest('Invalid preview_mode: must be one of next, recurring', 'preview_mode');
    if (mode === 'recurring') {
      const plan = items ? readChangePlan(store, sub, items, readProrationDate(store, sub, details, 'proration_date'), 'subscription_details[items]') : scheduledPlan(store, sub);
      const { lines, period } = recurringLines(store, sub, plan);
      return out(ctx, previewInvoice(store, sub, lines, 'upcoming', period));
    }
    if (!items) {
      const plan = scheduledPlan(store, sub);
      const { lines, period } = renewalLines(store, sub, plan, null);
      return out(ctx, previewInvoice(store, sub, lines, 'upcoming', period));
    }
    const prorationBehavior = readProrationBehavior(details, 'proration_behavior');
    const at = readProrationDate(store, sub, details, 'proration_date');
    const plan = readChangePlan(store, sub, items, at, 'subscription_details[items]');
    const change = changeLines(store, sub, plan, prorationBehavior);
    if (change.invoiceNow) return out(ctx, previewInvoice(store, sub, change.lines, 'subscription_update', change.period));
    const { lines, period } = renewalLines(store, sub, plan, change.lines);
    return out(ctx, previewInvoice(store, sub, lines, 'upcoming', period));
  });
}
