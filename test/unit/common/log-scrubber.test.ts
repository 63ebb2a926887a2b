import { scrubSecrets } from '../../../src/common/logger';
import { scrubLogValue } from '../../../src/common/log-scrubber';

describe('scrubLogValue', () => {
  const scrub = (value: unknown) => scrubLogValue(value, scrubSecrets);

  it('censors secret-named keys in any letter case and at any depth', () => {
    expect(
      scrub({ a: { b: { Authorization: 'Bearer x', secretKey: 'k', webhookSecret: 'w', devToken: 't', 'stripe-signature': 's', password: 'p' } } }),
    ).toEqual({ a: { b: { Authorization: '[redacted]', secretKey: '[redacted]', webhookSecret: '[redacted]', devToken: '[redacted]', 'stripe-signature': '[redacted]', password: '[redacted]' } } });
  });

  it('scrubs secrets inside strings, arrays and errors', () => {
    const error = Object.assign(new Error('bad key sk_test_abc123'), { raw: { message: 'whsec_zzz' } });
    const out = JSON.stringify(scrub({ list: ['sk_live_abc_def', 'eyJa.eyJb.sig'], error }));
    expect(out).not.toMatch(/abc123|whsec_zzz|sk_live_abc|eyJa/);
    expect(out).toContain('bad key sk_test_[redacted]');
  });

  it('returns ordinary values untouched, and marks cycles instead of following them', () => {
    const plain = { id: 'sub_1', quantity: 2, nested: { status: 'active' }, at: new Date(0) };
    expect(scrub(plain)).toBe(plain);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(scrub(cyclic)).toEqual({ name: 'loop', self: '[circular]' });
  });
});
