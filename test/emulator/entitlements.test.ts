import type Stripe from 'stripe';
import { startHarness, recurringPrice, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.emu.close();
});

async function trialingCustomer(priceId: string): Promise<Stripe.Customer> {
  const customer = await h.stripe.customers.create({ email: 'ent@example.com' });
  await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: priceId }], trial_period_days: 7 });
  return customer;
}

function summaries(customer: string) {
  return h.emu.events().filter((e) => e.type === 'entitlements.active_entitlement_summary.updated' && e.data.object.customer === customer);
}

describe('entitlements (features, product features, active entitlements) through the official SDK', () => {
  test('features: create, retrieve, update, list by lookup key, and a lookup key is unique', async () => {
    const feature = await h.stripe.entitlements.features.create({ name: 'SSO', lookup_key: 'sdk_sso', metadata: { team: 'auth' } });
    expect(feature).toMatchObject({ object: 'entitlements.feature', name: 'SSO', lookup_key: 'sdk_sso', active: true, livemode: false, metadata: { team: 'auth' } });
    expect(feature.id).toMatch(/^feat_/);
    expect(await h.stripe.entitlements.features.retrieve(feature.id)).toEqual(feature);
    const renamed = await h.stripe.entitlements.features.update(feature.id, { name: 'Single sign-on', active: false });
    expect(renamed).toMatchObject({ name: 'Single sign-on', active: false });
    const listed = await h.stripe.entitlements.features.list({ lookup_key: 'sdk_sso' });
    expect(listed.data.map((f) => f.id)).toEqual([feature.id]);
    expect((await h.stripe.entitlements.features.list({ archived: false })).data.map((f) => f.id)).not.toContain(feature.id);

    const duplicate = h.stripe.entitlements.features.create({ name: 'Again', lookup_key: 'sdk_sso' });
    await expect(duplicate).rejects.toMatchObject({ type: 'StripeInvalidRequestError', param: 'lookup_key' });
    await expect(h.stripe.entitlements.features.create({ name: 'No key' } as Stripe.Entitlements.FeatureCreateParams)).rejects.toMatchObject({
      code: 'parameter_missing',
      param: 'lookup_key',
    });
    await expect(h.stripe.entitlements.features.retrieve('feat_missing')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  test('product features: attach, list, retrieve, detach; the same feature twice or an archived one is refused', async () => {
    const product = await h.stripe.products.create({ name: 'Featured' });
    const feature = await h.stripe.entitlements.features.create({ name: 'Reports', lookup_key: 'sdk_reports' });
    const pf = await h.stripe.products.createFeature(product.id, { entitlement_feature: feature.id });
    expect(pf).toMatchObject({ object: 'product_feature', entitlement_feature: { id: feature.id, lookup_key: 'sdk_reports' } });
    expect((await h.stripe.products.listFeatures(product.id)).data.map((x) => x.id)).toEqual([pf.id]);
    expect((await h.stripe.products.retrieveFeature(product.id, pf.id)).id).toBe(pf.id);
    await expect(h.stripe.products.createFeature(product.id, { entitlement_feature: feature.id })).rejects.toMatchObject({ param: 'entitlement_feature' });

    const archived = await h.stripe.entitlements.features.create({ name: 'Old', lookup_key: 'sdk_old' });
    await h.stripe.entitlements.features.update(archived.id, { active: false });
    await expect(h.stripe.products.createFeature(product.id, { entitlement_feature: archived.id })).rejects.toMatchObject({ param: 'entitlement_feature' });

    expect(await h.stripe.products.deleteFeature(product.id, pf.id)).toMatchObject({ id: pf.id, deleted: true });
    expect((await h.stripe.products.listFeatures(product.id)).data).toEqual([]);
    await expect(h.stripe.products.deleteFeature(product.id, pf.id)).rejects.toMatchObject({ statusCode: 404 });
  });

  test("active entitlements follow the subscription's status and the product's features, page by page, with a summary event on every change", async () => {
    const price = await recurringPrice(h.stripe, 2500);
    const features: Stripe.Entitlements.Feature[] = [];
    for (let i = 0; i < 12; i++) {
      const f = await h.stripe.entitlements.features.create({ name: `F${i}`, lookup_key: `sdk_page_${i}` });
      await h.stripe.products.createFeature(price.product as string, { entitlement_feature: f.id });
      features.push(f);
    }
    const customer = await trialingCustomer(price.id);

    const all = await h.stripe.entitlements.activeEntitlements.list({ customer: customer.id, limit: 5 }).autoPagingToArray({ limit: 100 });
    expect(all.map((e) => e.lookup_key).sort()).toEqual(features.map((f) => f.lookup_key).sort());
    expect(all[0]).toMatchObject({ object: 'entitlements.active_entitlement', livemode: false });
    expect(new Set(all.map((e) => e.id)).size).toBe(12);
    const first = await h.stripe.entitlements.activeEntitlements.list({ customer: customer.id, limit: 5 });
    expect(first.has_more).toBe(true);
    expect((await h.stripe.entitlements.activeEntitlements.retrieve(all[3].id)).lookup_key).toBe(all[3].lookup_key);

    const events = summaries(customer.id);
    expect(events).toHaveLength(1);
    expect(events[0].data.object).toMatchObject({ object: 'entitlements.active_entitlement_summary', customer: customer.id });
    expect(events[0].data.object.entitlements.data).toHaveLength(10);
    expect(events[0].data.object.entitlements.has_more).toBe(true);

    // A feature archived in Stripe is no longer granted.
    await h.stripe.entitlements.features.update(features[0].id, { active: false });
    expect((await h.stripe.entitlements.activeEntitlements.list({ customer: customer.id, limit: 100 })).data).toHaveLength(11);
    expect(summaries(customer.id)).toHaveLength(2);

    const [sub] = (await h.stripe.subscriptions.list({ customer: customer.id })).data;
    await h.stripe.subscriptions.cancel(sub.id);
    expect((await h.stripe.entitlements.activeEntitlements.list({ customer: customer.id })).data).toEqual([]);
    const last = summaries(customer.id).at(-1)!;
    expect(last.data.object.entitlements).toMatchObject({ data: [], has_more: false });

    await expect(h.stripe.entitlements.activeEntitlements.list({} as Stripe.Entitlements.ActiveEntitlementListParams)).rejects.toMatchObject({ param: 'customer' });
  });
});
