import fs from 'node:fs';
import type Stripe from 'stripe';
import { describeRoutes } from '../../src/emulator';
import { buildSpecs, GENERATED_FILE, render } from '../../src/emulator/spec/generate';
import { startHarness, type Harness } from './helpers';

/** The error a call failed with, for asserting on Stripe's error body. */
async function failure(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

describe('accepted parameters come from the installed SDK', () => {
  it('the generated parameter trees match the installed stripe SDK (run `npm run emulator:params` after upgrading)', () => {
    expect(fs.readFileSync(GENERATED_FILE, 'utf8')).toBe(render(buildSpecs()));
  }, 60_000);

  it('every API route declares the Stripe request type it accepts', () => {
    const undeclared = describeRoutes().filter((r) => r.type === undefined).map((r) => r.key);
    expect(undeclared).toEqual([]);
  });
});

describe('strict like Stripe', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.emu.close();
  });

  it.each([
    ['customers.create', (s: Stripe) => s.customers.create({ emial: 'x@example.com' } as never), 'emial'],
    ['products.create', (s: Stripe) => s.products.create({ name: 'A', colour: 'red' } as never), 'colour'],
    ['prices.list', (s: Stripe) => s.prices.list({ prodcut: 'prod_x' } as never), 'prodcut'],
    ['webhookEndpoints.create', (s: Stripe) => s.webhookEndpoints.create({ url: 'https://example.com/h', enabled_events: ['*'], secret: 'x' } as never), 'secret'],
    ['billing.meters.create', (s: Stripe) => s.billing.meters.create({ display_name: 'A', event_name: 'a', default_aggregation: { formula: 'sum' }, unit: 'x' } as never), 'unit'],
    ['customers.list', (s: Stripe) => s.customers.list({ name: 'x' } as never), 'name'],
  ])('%s refuses an unknown parameter with 400 parameter_unknown', async (_name, call, param) => {
    const e = await failure(call(h.stripe));
    expect(e.statusCode).toBe(400);
    expect(e.type).toBe('StripeInvalidRequestError');
    expect(e.code).toBe('parameter_unknown');
    expect(e.param).toBe(param);
    expect(e.message).toBe(`Received unknown parameter: ${param}`);
    expect(e.doc_url).toBe('https://stripe.com/docs/error-codes/parameter-unknown');
  });

  it('names a nested unknown parameter with its full bracket path', async () => {
    const product = await h.stripe.products.create({ name: 'Nested' });
    const e = await failure(h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 100, recurring: { interval: 'month', intervall: 2 } } as never));
    expect(e.code).toBe('parameter_unknown');
    expect(e.param).toBe('recurring[intervall]');
  });

  it('a non-integer is parameter_invalid_integer, a bad choice parameter_invalid_string, an empty one parameter_invalid_empty', async () => {
    const product = await h.stripe.products.create({ name: 'Typed' });
    const nonInt = await failure(h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 'ten' as never }));
    expect([nonInt.code, nonInt.param, nonInt.message, nonInt.doc_url]).toEqual([
      'parameter_invalid_integer',
      'unit_amount',
      'Invalid integer: ten',
      'https://stripe.com/docs/error-codes/parameter-invalid-integer',
    ]);
    const choice = await failure(h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 10, recurring: { interval: 'fortnight' as never } }));
    expect([choice.code, choice.param, choice.message]).toEqual([
      'parameter_invalid_string',
      'recurring[interval]',
      'Invalid recurring[interval]: must be one of day, month, week, or year',
    ]);
    expect(choice.doc_url).toBe('https://stripe.com/docs/error-codes/parameter-invalid-string');
    const empty = await failure(h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 10, tax_behavior: '' as never }));
    expect([empty.code, empty.param]).toEqual(['parameter_invalid_empty', 'tax_behavior']);
  });

  it('a missing required parameter is parameter_missing with its doc_url', async () => {
    const e = await failure(h.stripe.products.create({} as never));
    expect([e.code, e.param, e.message, e.doc_url]).toEqual([
      'parameter_missing',
      'name',
      'Missing required param: name.',
      'https://stripe.com/docs/error-codes/parameter-missing',
    ]);
  });

  it('answers automatic_payment_methods as given and expands currency_options on a price', async () => {
    const pi = await h.stripe.paymentIntents.create({ amount: 500, currency: 'usd', automatic_payment_methods: { enabled: true } });
    expect(pi.automatic_payment_methods).toEqual({ allow_redirects: 'always', enabled: true });
    const product = await h.stripe.products.create({ name: 'Options' });
    const price = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 700 });
    const got = await h.stripe.prices.retrieve(price.id, { expand: ['currency_options'] });
    expect(got.currency_options?.usd?.unit_amount).toBe(700);
    const listed = await h.stripe.prices.list({ product: product.id, expand: ['data.currency_options'] });
    expect(listed.data[0].currency_options?.usd?.unit_amount).toBe(700);
  });

  it('accepts what Stripe accepts: metadata, expand and pagination where the request type has them', async () => {
    const c = await h.stripe.customers.create({ email: 'ok@example.com', metadata: { plan: 'pro' }, expand: ['invoice_settings.default_payment_method'] });
    expect(c.metadata).toEqual({ plan: 'pro' });
    const page = await h.stripe.customers.list({ limit: 1, email: 'ok@example.com', expand: ['data.invoice_settings.default_payment_method'] });
    expect(page.data.map((x) => x.id)).toEqual([c.id]);
  });

  it('keeps the customer fields Stripe takes on create and update instead of dropping them', async () => {
    const c = await h.stripe.customers.create({
      email: 'profile@example.com',
      balance: 250,
      tax_exempt: 'reverse',
      preferred_locales: ['fr', 'en'],
      address: { line1: '1 Rue de la Paix', city: 'Paris', country: 'FR' },
    });
    expect([c.balance, c.tax_exempt, c.preferred_locales, c.address?.city]).toEqual([250, 'reverse', ['fr', 'en'], 'Paris']);
    const u = await h.stripe.customers.update(c.id, { shipping: { name: 'Ada', address: { line1: '2 Main St', country: 'US' } }, address: '' as never });
    expect(u.shipping?.address?.line1).toBe('2 Main St');
    expect(u.address).toBeNull();
  });
});
