import { idempotencyKey, meterEventIdempotencyKey, STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH } from '../../src/stripe/idempotency';

describe('idempotencyKey', () => {
  it('is the same for the same scope and parts', () => {
    expect(idempotencyKey('subscription.create', 'cus_1', 'client-key')).toBe(
      idempotencyKey('subscription.create', 'cus_1', 'client-key'),
    );
  });

  it('is readable when short', () => {
    expect(idempotencyKey('customer.create', 'user-42')).toBe('customer.create:user-42');
  });

  it('differs when the scope or any part differs', () => {
    const keys = new Set([
      idempotencyKey('subscription.create', 'cus_1', 'k'),
      idempotencyKey('subscription.update', 'cus_1', 'k'),
      idempotencyKey('subscription.create', 'cus_2', 'k'),
      idempotencyKey('subscription.create', 'cus_1', 'k2'),
    ]);
    expect(keys.size).toBe(4);
  });

  it('does not let a separator inside a part collide with another split', () => {
    expect(idempotencyKey('x', 'a:b', 'c')).not.toBe(idempotencyKey('x', 'a', 'b:c'));
    expect(idempotencyKey('x', 'a%3Ab')).not.toBe(idempotencyKey('x', 'a:b'));
  });

  it('hashes long keys to a stable value within Stripe limit', () => {
    const long = 'k'.repeat(400);
    const key = idempotencyKey('usage.record', 'cus_1', long);
    expect(key.length).toBeLessThanOrEqual(STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH);
    expect(key).toBe(idempotencyKey('usage.record', 'cus_1', long));
    expect(key).not.toBe(idempotencyKey('usage.record', 'cus_1', long + 'x'));
    expect(key.startsWith('usage.record:h:')).toBe(true);
  });

  it('keeps keys of exactly 255 characters unhashed', () => {
    const part = 'p'.repeat(STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH - 'a:'.length);
    expect(idempotencyKey('a', part)).toBe(`a:${part}`);
  });

  it('rejects empty parts and bad scopes, which would make unrelated requests share a key', () => {
    expect(() => idempotencyKey('customer.create')).toThrow(TypeError);
    expect(() => idempotencyKey('customer.create', '')).toThrow(TypeError);
    expect(() => idempotencyKey('Bad Scope', 'x')).toThrow(TypeError);
    expect(() => idempotencyKey('x', Number.NaN)).toThrow(TypeError);
  });

  it('derives meter event keys from the event identifier', () => {
    expect(meterEventIdempotencyKey('usage_1')).toBe(meterEventIdempotencyKey('usage_1'));
    expect(meterEventIdempotencyKey('usage_1')).not.toBe(meterEventIdempotencyKey('usage_2'));
  });
});
