/**
 * A customer's tax ids (`/v1/customers/:id/tax_ids`) and credit balance transactions
 * (`/v1/customers/:id/balance_transactions`). The balance is applied to the customer's next
 * finalized invoice (see finalizeInvoice), as on Stripe.
 */
import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, int, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';

/** Formats Stripe checks synchronously for common types; others need a non-empty value. */
const TAX_ID_FORMATS: Record<string, { re: RegExp; country: (v: string) => string }> = {
  eu_vat: { re: /^[A-Z]{2}[0-9A-Z+*]{2,13}$/, country: (v) => (v.startsWith('EL') ? 'GR' : v.slice(0, 2)) },
  gb_vat: { re: /^GB(\d{9}|\d{12})$/, country: () => 'GB' },
  us_ein: { re: /^\d{2}-?\d{7}$/, country: () => 'US' },
  au_abn: { re: /^\d{11}$/, country: () => 'AU' },
  ca_bn: { re: /^\d{9}$/, country: () => 'CA' },
  ch_vat: { re: /^CHE-?\d{3}\.?\d{3}\.?\d{3} ?(MWST|TVA|IVA)$/, country: () => 'CH' },
};

function customerOf(store: Store, id: string): Obj {
  const c = store.get('customer', id);
  if (!c) throw noSuch('customer', id, 'customer');
  return c;
}

/** Records a change of the customer's balance (positive: owed by the customer; negative: credit). */
export function balanceTransaction(store: Store, customer: Obj, f: { amount: number; currency: string; type: string; description?: string | null; metadata?: Obj; invoice?: string | null }): Obj {
  const before = customer.balance;
  customer.balance += f.amount;
  if (!customer.currency) customer.currency = f.currency;
  const t: Obj = {
    id: newId('cbtxn_'),
    object: 'customer_balance_transaction',
    amount: f.amount,
    checkout_session: null,
    created: store.now(),
    credit_note: null,
    currency: f.currency,
    customer: customer.id,
    customer_account: null,
    description: f.description ?? null,
    ending_balance: customer.balance,
    invoice: f.invoice ?? null,
    livemode: false,
    metadata: f.metadata ?? {},
    type: f.type,
  };
  store.insert('customer_balance_transaction', t);
  store.emit('customer.updated', customer, { balance: before });
  return t;
}

export function registerCustomerExtras(router: Router, store: Store): void {
  router.add('POST', '/v1/customers/:id/tax_ids', (ctx) => {
    const c = customerOf(store, ctx.pathParams.id);
    const type = str(ctx.params, 'type') as string;
    const value = (str(ctx.params, 'value') ?? '').replace(/\s+/g, '').toUpperCase();
    if (!value) throw missingParam('value');
    const format = TAX_ID_FORMATS[type];
    if (format && !format.re.test(value)) throw invalidRequest(`Invalid value for ${type}.`, 'value', 'tax_id_invalid');
    const t: Obj = {
      id: newId('txi_'),
      object: 'tax_id',
      country: format ? format.country(value) : null,
      created: store.now(),
      customer: c.id,
      customer_account: null,
      livemode: false,
      owner: { account: null, application: null, customer: c.id, customer_account: null, type: 'customer' },
      type,
      value,
      verification: { status: 'pending', verified_address: null, verified_name: null },
    };
    store.insert('tax_id', t);
    store.emit('customer.tax_id.created', t);
    return out(ctx, t);
  });

  const taxId = (customer: string, id: string): Obj => {
    customerOf(store, customer);
    const t = store.get('tax_id', id);
    if (!t || t.customer !== customer) throw noSuch('tax_id', id, 'id');
    return t;
  };

  router.add('GET', '/v1/customers/:id/tax_ids/:taxId', (ctx) => out(ctx, taxId(ctx.pathParams.id, ctx.pathParams.taxId)));

  router.add('DELETE', '/v1/customers/:id/tax_ids/:taxId', (ctx) => {
    const t = taxId(ctx.pathParams.id, ctx.pathParams.taxId);
    store.remove('tax_id', t.id);
    store.emit('customer.tax_id.deleted', t);
    return { id: t.id, object: 'tax_id', deleted: true };
  });

  router.add('GET', '/v1/customers/:id/tax_ids', (ctx) => {
    const c = customerOf(store, ctx.pathParams.id);
    return listOut(ctx, store.list('tax_id').filter((t) => t.customer === c.id));
  });

  router.add('POST', '/v1/customers/:id/balance_transactions', (ctx) => {
    const c = customerOf(store, ctx.pathParams.id);
    const amount = int(ctx.params, 'amount') as number;
    const currency = (str(ctx.params, 'currency') as string).toLowerCase();
    if (c.currency && c.currency !== currency) {
      throw invalidRequest(`The customer's balance is in ${c.currency}; a transaction in ${currency} cannot change it.`, 'currency', 'parameter_invalid_string');
    }
    const t = balanceTransaction(store, c, { amount, currency, type: 'adjustment', description: str(ctx.params, 'description'), metadata: applyMetadata({}, ctx.params) });
    return out(ctx, t);
  });

  const txn = (customer: string, id: string): Obj => {
    customerOf(store, customer);
    const t = store.get('customer_balance_transaction', id);
    if (!t || t.customer !== customer) throw noSuch('customer_balance_transaction', id, 'id');
    return t;
  };

  router.add('GET', '/v1/customers/:id/balance_transactions/:txn', (ctx) => out(ctx, txn(ctx.pathParams.id, ctx.pathParams.txn)));

  router.add('POST', '/v1/customers/:id/balance_transactions/:txn', (ctx) => {
    const t = txn(ctx.pathParams.id, ctx.pathParams.txn);
    if ('description' in ctx.params) t.description = str(ctx.params, 'description') ?? null;
    t.metadata = applyMetadata(t.metadata, ctx.params);
    return out(ctx, t);
  });

  router.add('GET', '/v1/customers/:id/balance_transactions', (ctx) => {
    const c = customerOf(store, ctx.pathParams.id);
    return listOut(ctx, store.list('customer_balance_transaction').filter((t) => t.customer === c.id));
  });
}
