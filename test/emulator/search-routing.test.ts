import { failure, useHarness, type Harness } from './helpers';

describe('search and static sub-paths', () => {
  const harness = useHarness();
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });

  it('searches customers by email, metadata, created and with AND/OR', async () => {
    const tag = `t${Date.now()}`;
    const a = await h.stripe.customers.create({ email: `a-${tag}@example.com`, metadata: { tag, tier: 'gold' } });
    const b = await h.stripe.customers.create({ email: `b-${tag}@example.com`, metadata: { tag, tier: 'silver' } });
    await h.stripe.customers.create({ email: `c-${tag}@example.com` });
    const byEmail = await h.stripe.customers.search({ query: `email:'a-${tag}@example.com'` });
    expect(byEmail.object).toBe('search_result');
    expect(byEmail.data.map((c) => c.id)).toEqual([a.id]);
    const byMeta = await h.stripe.customers.search({ query: `metadata['tag']:'${tag}' AND metadata["tier"]:"silver"` });
    expect(byMeta.data.map((c) => c.id)).toEqual([b.id]);
    const either = await h.stripe.customers.search({ query: `email:'a-${tag}@example.com' OR email:'b-${tag}@example.com'` });
    expect(either.data.map((c) => c.id).sort()).toEqual([a.id, b.id].sort());
    const created = await h.stripe.customers.search({ query: `created>${a.created - 1} AND metadata['tag']:'${tag}'` });
    expect(created.data).toHaveLength(2);
    const negated = await h.stripe.customers.search({ query: `metadata['tag']:'${tag}' AND -metadata['tier']:'gold'` });
    expect(negated.data.map((c) => c.id)).toEqual([b.id]);
  });

  it('pages with next_page and the SDK auto-pagination', async () => {
    const tag = `p${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.stripe.products.create({ name: `P${i}`, metadata: { tag } })).id);
    const first = await h.stripe.products.search({ query: `metadata['tag']:'${tag}'`, limit: 2 });
    expect(first.has_more).toBe(true);
    expect(first.next_page).toEqual(expect.any(String));
    const second = await h.stripe.products.search({ query: `metadata['tag']:'${tag}'`, limit: 2, page: first.next_page as string });
    expect(second.data.map((p) => p.id)).toEqual(ids.slice().reverse().slice(2, 4));
    const all = await h.stripe.products.search({ query: `metadata['tag']:'${tag}'`, limit: 2 }).autoPagingToArray({ limit: 100 });
    expect(all.map((p) => p.id)).toEqual(ids.slice().reverse());
  });

  it('searches prices, subscriptions, payment intents and invoices on their own fields', async () => {
    const product = await h.stripe.products.create({ name: 'Searchable' });
    const price = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1234, recurring: { interval: 'month' }, lookup_key: `lk_${Date.now()}` });
    const prices = await h.stripe.prices.search({ query: `product:'${product.id}' AND active:'true'` });
    expect(prices.data.map((p) => p.id)).toEqual([price.id]);
    const customer = await h.stripe.customers.create({ email: 'subs@example.com', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], metadata: { order: 'o-1' } });
    const subs = await h.stripe.subscriptions.search({ query: `status:'active' AND metadata['order']:'o-1'` });
    expect(subs.data.map((s) => s.id)).toEqual([sub.id]);
    const pis = await h.stripe.paymentIntents.search({ query: `customer:'${customer.id}' AND amount>=1234` });
    expect(pis.data).toHaveLength(1);
    const invoices = await h.stripe.invoices.search({ query: `customer:'${customer.id}' AND status:'paid' AND total>1000` });
    expect(invoices.data.map((i) => i.id)).toEqual([sub.latest_invoice]);
  });

  it('refuses an unsupported field and a query mixing AND and OR, as Stripe does', async () => {
    const bad = await failure(h.stripe.customers.search({ query: "colour:'red'" }));
    expect([bad.statusCode, bad.param]).toEqual([400, 'query']);
    expect(bad.message).toContain('unsupported search field');
    const mixed = await failure(h.stripe.customers.search({ query: "email:'a' AND name:'b' OR phone:'c'" }));
    expect(mixed.param).toBe('query');
    const missing = await failure(h.stripe.customers.search({} as never));
    expect([missing.code, missing.param]).toEqual(['parameter_missing', 'query']);
  });

  it('never takes a static sub-path for an object id', async () => {
    const preview = await fetch(`${h.emu.url}/v1/invoices/create_preview`, { method: 'POST', headers: { Authorization: 'Bearer sk_test_x' } });
    expect((await preview.text())).not.toContain("No such invoice: 'create_preview'");
    const upcoming = await fetch(`${h.emu.url}/v1/invoices/upcoming?customer=cus_x`, { headers: { Authorization: 'Bearer sk_test_x' } });
    const body = (await upcoming.json()) as { error: { message: string } };
    expect(body.error.message).toContain('create_preview');
    // As on Stripe, GET /v1/products/search is the search endpoint, which needs a query.
    const retrieve = await failure(h.stripe.products.retrieve('search'));
    expect([retrieve.statusCode, retrieve.code, retrieve.param]).toEqual([400, 'parameter_missing', 'query']);
  });
});
