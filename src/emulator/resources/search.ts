/**
 * `GET /v1/{customers,products,prices,subscriptions,payment_intents,invoices}/search` with the
 * fields Stripe documents as searchable for each.
 */
import { expandList, str } from '../params';
import type { Router } from '../router';
import { searchFilter, searchPage, type SearchFields } from '../search';
import { applyExpand, type Obj, type Store } from '../store';

const SEARCHABLE: Record<string, { type: string; fields: SearchFields }> = {
  customers: {
    type: 'customer',
    fields: { created: (o) => o.created, email: (o) => o.email, metadata: (o) => o.metadata, name: (o) => o.name, phone: (o) => o.phone },
  },
  products: {
    type: 'product',
    fields: {
      active: (o) => o.active,
      created: (o) => o.created,
      description: (o) => o.description,
      metadata: (o) => o.metadata,
      name: (o) => o.name,
      shippable: (o) => o.shippable,
      url: (o) => o.url,
    },
  },
  prices: {
    type: 'price',
    fields: {
      active: (o) => o.active,
      created: (o) => o.created,
      currency: (o) => o.currency,
      lookup_key: (o) => o.lookup_key,
      metadata: (o) => o.metadata,
      product: (o) => o.product,
      type: (o) => o.type,
    },
  },
  subscriptions: {
    type: 'subscription',
    fields: { created: (o) => o.created, metadata: (o) => o.metadata, status: (o) => o.status },
  },
  payment_intents: {
    type: 'payment_intent',
    fields: {
      amount: (o) => o.amount,
      created: (o) => o.created,
      currency: (o) => o.currency,
      customer: (o) => o.customer,
      metadata: (o) => o.metadata,
      status: (o) => o.status,
    },
  },
  invoices: {
    type: 'invoice',
    fields: {
      created: (o) => o.created,
      currency: (o) => o.currency,
      customer: (o) => o.customer,
      last_finalization_error_code: (o) => o.last_finalization_error?.code ?? null,
      metadata: (o) => o.metadata,
      number: (o) => o.number,
      receipt_number: (o) => o.receipt_number,
      status: (o) => o.status,
      subscription: (o) => o.parent?.subscription_details?.subscription ?? null,
      total: (o) => o.total,
    },
  },
};

export function registerSearch(router: Router, store: Store): void {
  for (const [resource, { type, fields }] of Object.entries(SEARCHABLE)) {
    router.add('GET', `/v1/${resource}/search`, (ctx) => {
      const matches = searchFilter(str(ctx.params, 'query') ?? '', resource, fields);
      const items = store.list(type).filter((o: Obj) => matches(o));
      const page = searchPage(items, ctx.params, ctx.path, (o) => store.render(o));
      const expand = expandList(ctx.params).filter((e) => e !== 'total_count');
      return applyExpand(store, page, expand);
    });
  }
}
