import { clockTarget } from '../../../src/billing/customers/clock-span';

const FROM = new Date('2027-01-31T10:00:00Z');

describe(clockTarget.name, () => {
  it('adds hours, days and weeks exactly', () => {
    expect(clockTarget('12h', FROM).toISOString()).toBe('2027-01-31T22:00:00.000Z');
    expect(clockTarget('7d', FROM).toISOString()).toBe('2027-02-07T10:00:00.000Z');
    expect(clockTarget('2w', FROM).toISOString()).toBe('2027-02-14T10:00:00.000Z');
    expect(clockTarget('3 days', FROM).toISOString()).toBe('2027-02-03T10:00:00.000Z');
  });

  it('adds calendar months and years, staying on the last day of a shorter month', () => {
    expect(clockTarget('1month', FROM).toISOString()).toBe('2027-02-28T10:00:00.000Z');
    expect(clockTarget('1mo', FROM).toISOString()).toBe('2027-02-28T10:00:00.000Z');
    expect(clockTarget('2months', FROM).toISOString()).toBe('2027-03-31T10:00:00.000Z');
    expect(clockTarget('1y', FROM).toISOString()).toBe('2028-01-31T10:00:00.000Z');
  });

  it('takes an ISO date (midnight UTC) or time', () => {
    expect(clockTarget('2027-03-01', FROM).toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(clockTarget('2027-03-01T12:30:00Z', FROM).toISOString()).toBe('2027-03-01T12:30:00.000Z');
  });

  it('refuses anything else with a message that says what is accepted', () => {
    for (const bad of ['', 'soon', '1m', '0d', '-1d', '2027-13-45', '1 fortnight']) {
      expect(() => clockTarget(bad, FROM)).toThrow(RangeError);
    }
    expect(() => clockTarget('soon', FROM)).toThrow(/12h, 7d, 2w, 1month, 1y/);
  });
});
