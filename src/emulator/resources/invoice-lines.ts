/**
 * Invoice lines and totals, shared by invoices and invoice items: the line object of a line
 * spec, the line of an invoice item, and an invoice's totals from its lines and discounts.
 */
import { newId } from '../ids';
import type { Obj, Store } from '../store';

export interface LineSpec {
  amount: number;
  description: string;
  price: Obj | null;
  quantity: number | null;
  period: { start: number; end: number };
  subscriptionItem?: string | null;
  proration?: boolean;
  /** The invoice item this line bills (an item created with `POST /v1/invoiceitems`). */
  invoiceItem?: string;
  metadata?: Obj;
  discountable?: boolean;
}

/** One invoice line object from its spec. */
export function lineObject(store: Store, invoiceId: string, currency: string, subscriptionId: string | null, l: LineSpec): Obj {
  return {
    id: newId('il_'),
    object: 'line_item',
    amount: l.amount,
    currency,
    description: l.description,
    discount_amounts: [],
    discountable: l.discountable ?? true,
    discounts: [],
    invoice: invoiceId,
    livemode: false,
    metadata: { ...(l.metadata ?? {}) },
    parent: l.invoiceItem
      ? {
          invoice_item_details: {
            invoice_item: l.invoiceItem,
            proration: false,
            proration_details: { credited_items: null },
            subscription: subscriptionId,
          },
          subscription_item_details: null,
          type: 'invoice_item_details',
        }
      : l.proration
      ? {
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: newId('ii_'),
            proration: true,
            proration_details: { credited_items: null },
            subscription: subscriptionId,
            subscription_item: l.subscriptionItem ?? null,
          },
          type: 'subscription_item_details',
        }
      : subscriptionId
        ? {
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: false,
              proration_details: { credited_items: null },
              subscription: subscriptionId,
              subscription_item: l.subscriptionItem ?? null,
            },
            type: 'subscription_item_details',
          }
        : null,
    period: l.period,
    pretax_credit_amounts: [],
    pricing: l.price
      ? { price_details: { price: l.price.id, product: l.price.product }, type: 'price_details', unit_amount_decimal: l.price.unit_amount_decimal }
      : null,
    quantity: l.quantity,
    quantity_decimal: l.quantity === null ? null : String(l.quantity),
    subscription: subscriptionId,
    subtotal: l.amount,
    taxes: [],
  };
}

export function invoiceItemLine(store: Store, ii: Obj): LineSpec {
  const priceId = ii.pricing?.price_details?.price;
  return {
    amount: ii.amount,
    description: ii.description ?? '',
    price: priceId ? (store.get('price', priceId) ?? null) : null,
    quantity: ii.quantity,
    period: ii.period,
    invoiceItem: ii.id,
    metadata: ii.metadata,
    discountable: ii.discountable,
  };
}

/**
 * Totals of an invoice from its lines and discounts: each discount takes its share of the
 * discountable lines (percent) or a fixed amount spread over them, never below zero.
 */
export function recomputeInvoice(store: Store, inv: Obj): void {
  const lines = inv.lines.data as Obj[];
  const subtotal = lines.reduce((s, l) => s + l.amount, 0);
  const totalDiscounts: Obj[] = [];
  for (const l of lines) l.discount_amounts = [];
  for (const discountId of inv.discounts as string[]) {
    const d = store.get('discount', discountId);
    const coupon = d ? store.get('coupon', d.source?.coupon ?? d.coupon?.id ?? d._coupon) : undefined;
    if (!d || !coupon) continue;
    const eligible = lines.filter((l) => l.discountable && l.amount > 0 && appliesTo(store, coupon, l));
    const base = eligible.reduce((s, l) => s + l.amount - l.discount_amounts.reduce((a: number, x: Obj) => a + x.amount, 0), 0);
    if (base <= 0) continue;
    let amount = coupon.percent_off != null ? Math.round((base * coupon.percent_off) / 100) : Math.min(base, coupon.amount_off ?? 0);
    if (coupon.amount_off != null && coupon.currency && coupon.currency !== inv.currency) amount = 0;
    if (amount <= 0) continue;
    let left = amount;
    eligible.forEach((l, i) => {
      const already = l.discount_amounts.reduce((a: number, x: Obj) => a + x.amount, 0);
      const share = i === eligible.length - 1 ? left : Math.min(left, Math.round((amount * (l.amount - already)) / base));
      left -= share;
      if (share > 0) l.discount_amounts.push({ amount: share, discount: d.id });
    });
    totalDiscounts.push({ amount, discount: d.id });
  }
  const discountTotal = totalDiscounts.reduce((s, x) => s + x.amount, 0);
  const total = subtotal - discountTotal;
  inv.subtotal = subtotal;
  inv.subtotal_excluding_tax = subtotal;
  inv.total_discount_amounts = totalDiscounts;
  inv.total = total;
  inv.total_excluding_tax = total;
  inv.amount_due = Math.max(0, total + inv.starting_balance);
  inv.amount_remaining = inv.status === 'paid' ? 0 : inv.amount_due - inv.amount_paid;
  inv.lines.total_count = lines.length;
}

function appliesTo(store: Store, coupon: Obj, line: Obj): boolean {
  const products: string[] | undefined = coupon.applies_to?.products;
  if (!products || products.length === 0) return true;
  const priceId = line.pricing?.price_details?.price;
  const price = priceId ? store.get('price', priceId) : undefined;
  return !!price && products.includes(price.product);
}

