import Stripe from 'stripe';
import { startEmulator } from '../../src/emulator';
import { BillingError, ErrorCode } from '../../src/common/errors';
import { StripeSdkGateway } from '../../src/stripe/stripe-sdk.gateway';

/* The gateway's test clock calls through the real SDK over HTTP against the emulator. */
type Emulator = Awaited<ReturnType<typeof startEmulator>>;
const SECRET_KEY = 'sk_test_tollgate_clock_calls';

let emu: Emulator;
const gatewayFor = (customerTestClock?: string) => new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, maxNetworkRetries: 0, customerTestClock });

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
});
afterAll(() => emu.close());

describe('StripeSdkGateway test clocks', () => {
  it('finds or creates one clock per name, also for gateways racing to create it', async () => {
    const [a, b] = await Promise.all([gatewayFor().findOrCreateTestClock('race'), gatewayFor().findOrCreateTestClock('race')]);
    expect(a.id).toBe(b.id);
    expect(a).toMatchObject({ name: 'race', status: 'ready' });
    // Frozen at the current minute.
    expect(a.frozenTime.getTime() % 60_000).toBe(0);
    expect(Date.now() - a.frozenTime.getTime()).toBeLessThan(65_000);
    const again = await gatewayFor().findOrCreateTestClock('race');
    expect(again.id).toBe(a.id);
    expect((await gatewayFor().listTestClocks()).filter((c) => c.name === 'race')).toHaveLength(1);
    expect((await gatewayFor().findOrCreateTestClock('other')).id).not.toBe(a.id);
  });

  it('advances a clock, which is ready at the new time', async () => {
    const gateway = gatewayFor();
    const clock = await gateway.findOrCreateTestClock('advance');
    const to = new Date(clock.frozenTime.getTime() + 7 * 86_400_000);
    await gateway.advanceTestClock({ id: clock.id, to });
    expect(await gateway.retrieveTestClock(clock.id)).toMatchObject({ id: clock.id, frozenTime: to, status: 'ready' });
    // Stripe refuses to go back; its reason stays on the error's cause.
    const back = await gateway.advanceTestClock({ id: clock.id, to: clock.frozenTime }).catch((e: unknown) => e);
    expect(back).toMatchObject({ code: ErrorCode.PAYMENT_PROVIDER_ERROR });
    expect(((back as BillingError).cause as Error).message).toMatch(/must be after the test clock's current frozen_time/);
    const missing = await gateway.retrieveTestClock('clock_missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BillingError);
    expect(missing).toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it('creates customers on the named clock, and replaces their card as the portal does', async () => {
    const gateway = gatewayFor('customers');
    expect(gateway.customerTestClock).toBe('customers');
    const clock = await gateway.findOrCreateTestClock('customers');
    const created = await gateway.createCustomer({ userId: 'u1', email: 'u1@example.com', testClockId: clock.id, idempotencyKey: 'clock-customer-u1' });
    const sdk = new Stripe(SECRET_KEY, { host: '127.0.0.1', port: emu.port, protocol: 'http' });
    expect(((await sdk.customers.retrieve(created.id)) as Stripe.Customer).test_clock).toBe(clock.id);

    const switched = await gateway.switchTestCard({ customer: 'u1@example.com', card: 'pm_card_visa' });
    expect(switched).toMatchObject({ customerId: created.id, subscriptionIds: [] });
    expect(((await sdk.customers.retrieve(created.id)) as Stripe.Customer).invoice_settings.default_payment_method).toBe(switched.paymentMethodId);
    await expect(gateway.switchTestCard({ customer: 'nobody@example.com', card: 'pm_card_visa' })).rejects.toMatchObject({ code: ErrorCode.BAD_USER_INPUT });
  });
});
