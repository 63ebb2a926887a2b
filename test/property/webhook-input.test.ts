import fc from 'fast-check';
import { startTestServer, type TestServer } from '../helpers/test-server';
import { stripeSignature } from '../helpers/stripe-signature';

/*
 * Property-based tests over what reaches POST /webhooks/stripe: arbitrary bytes, arbitrary
 * Stripe-Signature headers, and correctly signed arbitrary JSON. Unverifiable input is a 400
 * and stores nothing; verified input is recorded at most once and never crashes the route.
 */

const SECRET = 'whsec_tollgate_property_webhooks_0123456789';
const RUNS = 60;

const sign = (payload: string | Uint8Array, secret = SECRET, t?: number) => stripeSignature(payload, secret, t);

/** Event-shaped JSON whose every part may be wrong: types, ids, nesting, livemode. */
const eventLike = fc.record(
  {
    id: fc.oneof(fc.string(), fc.uuid().map((u) => `evt_prop_${u.replace(/-/g, '')}`), fc.integer(), fc.constant(null)),
    object: fc.oneof(fc.constant('event'), fc.string()),
    type: fc.oneof(
      fc.constantFrom(
        'customer.subscription.created',
        'customer.subscription.updated',
        'customer.subscription.deleted',
        'checkout.session.completed',
        'checkout.session.expired',
        'invoice.paid',
        'invoice.payment_failed',
        'product.updated',
        'price.deleted',
        'something.else',
      ),
      fc.string(),
      fc.integer(),
    ),
    api_version: fc.oneof(fc.constant('2025-03-31.basil'), fc.string(), fc.constant(null)),
    created: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.double(), fc.string(), fc.constant(null)),
    livemode: fc.oneof(fc.constant(false), fc.boolean(), fc.string()),
    data: fc.oneof(
      fc.record({ object: fc.oneof(fc.jsonValue(), fc.record({ id: fc.string(), object: fc.constantFrom('subscription', 'invoice', 'checkout.session', 'product', 'price'), customer: fc.string(), status: fc.string(), items: fc.jsonValue() }, { requiredKeys: [] })) }, { requiredKeys: [] }),
      fc.jsonValue(),
    ),
  },
  { requiredKeys: [] },
);

describe('webhook route under arbitrary input', () => {
  let server: TestServer;
  let endpoint: string;
  const storedEvents = async () => Number((await server.orm.em.fork().getConnection().execute(`select count(*)::int as n from stripe_events`))[0].n);
  const post = (body: string | Uint8Array, headers: Record<string, string>) =>
    fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body as BodyInit });

  beforeAll(async () => {
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET, USAGE_FORWARDER_ENABLED: 'false' });
    endpoint = `${server.url}/webhooks/stripe`;
  });
  afterAll(() => server?.stop());

  it('answers 400 and stores nothing for arbitrary bytes with an arbitrary or missing signature', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 2048 }), fc.json()),
        fc.option(fc.oneof(fc.string(), fc.string({ unit: 'binary' }).filter((s) => /^[\x20-\x7e]*$/.test(s))), { nil: undefined }),
        async (body, signature) => {
          const before = await storedEvents();
          const res = await post(body, signature !== undefined ? { 'stripe-signature': signature } : {});
          expect(res.status).toBe(400);
          expect(await storedEvents()).toBe(before);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('answers 400 and stores nothing for well-formed headers that do not match (other secret, stale time, random hex, extra parts)', async () => {
    const header = fc.oneof(
      fc.tuple(fc.integer(), fc.stringMatching(/^[0-9a-f]{64}$/)).map(([t, v1]) => `t=${t},v1=${v1}`),
      fc.string().map((s) => sign(JSON.stringify({ id: 'evt_x', type: 'product.updated' }), `whsec_${s}x`)),
      fc.integer({ min: 301, max: 10 ** 9 }).map((age) => ['stale', age] as const),
      fc.array(fc.stringMatching(/^[a-z0-9]{1,3}=[0-9a-f]{0,64}$/), { maxLength: 6 }).map((parts) => parts.join(',')),
    );
    await fc.assert(
      fc.asyncProperty(eventLike, header, async (event, h) => {
        const body = JSON.stringify(event);
        const value = Array.isArray(h) ? sign(body, SECRET, Math.floor(Date.now() / 1000) - h[1]) : (h as string);
        const before = await storedEvents();
        const res = await post(body, { 'stripe-signature': value });
        expect(res.status).toBe(400);
        expect(await storedEvents()).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });

  it('never fails to answer correctly signed arbitrary JSON: 400 with nothing stored for non-events, else one stored row per event id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(eventLike, fc.jsonValue()), async (value) => {
        const body = JSON.stringify(value) ?? 'null';
        const before = await storedEvents();
        const res = await post(body, { 'stripe-signature': sign(body) });
        const stored = (await storedEvents()) - before;
        const answer = (await res.json()) as Record<string, unknown>;
        const event = value as { id?: unknown; type?: unknown; livemode?: unknown };
        const isEvent = typeof value === 'object' && value !== null && !Array.isArray(value) && typeof event.id === 'string' && typeof event.type === 'string';
        if (!isEvent || event.livemode === true) {
          expect([res.status, stored]).toEqual([400, 0]);
          return;
        }
        // A verified event is recorded once; applying it either works (200) or is kept as failed for a retry (500).
        expect([200, 400, 500]).toContain(res.status);
        expect(answer).toEqual(res.status === 200 ? expect.objectContaining({ received: true }) : { error: expect.any(String) });
        if (res.status === 400) expect(stored).toBe(0);
        if (res.status === 500) {
          const rows = await server.orm.em.fork().getConnection().execute(`select status, error from stripe_events where stripe_event_id = ?`, [event.id]);
          expect(rows).toEqual([{ status: 'failed', error: expect.any(String) }]);
        }
        // The same delivery again never makes a second row.
        const again = await post(body, { 'stripe-signature': sign(body) });
        expect(again.status).toBe(res.status === 500 ? 500 : res.status);
        expect((await storedEvents()) - before).toBe(stored);
      }),
      { numRuns: RUNS },
    );
  });
});
