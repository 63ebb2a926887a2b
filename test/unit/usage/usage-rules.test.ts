import { ErrorCode } from '../../../src/common/errors';
import { leaseFor } from '../../../src/billing/usage/usage-forwarder';
import { checkOccurredAt, checkQuantity, hashRequest, MAX_USAGE_QUANTITY } from '../../../src/billing/usage/usage.service';
import { limitPeriod } from '../../../src/billing/usage/usage.rules';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('usage rules', () => {
  describe(checkQuantity.name, () => {
    it('accepts positive finite quantities up to the bound, fractions included', () => {
      for (const q of [1, 0.001, 2.5, MAX_USAGE_QUANTITY]) expect(checkQuantity(q)).toBe(q);
    });

    it('refuses zero, negatives, NaN, infinities and quantities above the bound', () => {
      for (const q of [0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, MAX_USAGE_QUANTITY * 1.0001]) {
        expect(codeOf(() => checkQuantity(q))).toBe(ErrorCode.BAD_USER_INPUT);
      }
    });
  });

  describe(checkOccurredAt.name, () => {
    const now = new Date('2026-11-26T12:00:00Z');
    const day = 24 * 3600_000;

    it("accepts times inside Stripe's window: up to 35 days ago and 5 minutes ahead", () => {
      for (const t of [now.getTime(), now.getTime() - 35 * day, now.getTime() + 5 * 60_000]) {
        expect(codeOf(() => checkOccurredAt(new Date(t), now))).toBeUndefined();
      }
    });

    it('refuses older, later and invalid times', () => {
      for (const t of [now.getTime() - 35 * day - 1, now.getTime() + 5 * 60_000 + 1, Number.NaN]) {
        expect(codeOf(() => checkOccurredAt(new Date(t), now))).toBe(ErrorCode.BAD_USER_INPUT);
      }
    });
  });

  describe(limitPeriod.name, () => {
    const now = new Date('2026-12-07T05:00:00Z');

    it("counts the subscription's current billing period", () => {
      const start = new Date('2026-11-20T00:00:00Z');
      const end = new Date('2026-12-20T00:00:00Z');
      expect(limitPeriod({ currentPeriodStart: start, currentPeriodEnd: end }, now)).toEqual({ start, end });
    });

    it('counts the UTC calendar month for a subscription without a period', () => {
      expect(limitPeriod({ currentPeriodStart: null, currentPeriodEnd: null }, now)).toEqual({
        start: new Date('2026-12-01T00:00:00Z'),
        end: new Date('2027-01-01T00:00:00Z'),
      });
    });
  });

  describe(hashRequest.name, () => {
    it('is stable for the same input and differs for any changed field', () => {
      const base = { subscriptionId: 'a', meter: 'api_calls', quantity: 1, occurredAt: null };
      expect(hashRequest(base)).toBe(hashRequest({ ...base }));
      for (const change of [{ quantity: 2 }, { meter: 'x' }, { subscriptionId: 'b' }, { occurredAt: '2026-11-26T12:00:00.000Z' }]) {
        expect(hashRequest({ ...base, ...change })).not.toBe(hashRequest(base));
      }
    });
  });

  describe(leaseFor.name, () => {
    it('outlasts a round of sends: every request timing out on every try, the session request included', () => {
      const lease = leaseFor({ batchSize: 500, concurrency: 4, timeoutMs: 20_000, maxNetworkRetries: 2 });
      // 5 requests of 100, 4 at a time: 2 waves, plus the session; each up to 3 tries and 2 waits.
      expect(lease).toBeGreaterThanOrEqual(3 * (3 * 20_000 + 2 * 5_000));
    });

    it('shrinks with a short request budget, so rows of a killed forwarder are retried soon', () => {
      expect(leaseFor({ batchSize: 20, concurrency: 4, timeoutMs: 2000, maxNetworkRetries: 0 })).toBeLessThan(10_000);
    });
  });
});
