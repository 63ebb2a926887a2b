import { customerIdOf, uuidV5 } from '../../../src/billing/customers/customer-id';

describe('customerIdOf', () => {
  it('derives the version-5 UUID that other RFC 4122 implementations derive', () => {
    // Vectors from Python's uuid.uuid5.
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(customerIdOf('user-1')).toBe('834797d8-7bc5-5c90-bfaa-075dfe4a007d');
    expect(customerIdOf('auth0|ünï')).toBe('c230ec38-5649-5ac8-a72e-9e1b4331b9e2');
  });

  it('gives each user its own id, the same one every time', () => {
    expect(customerIdOf('alice')).toBe(customerIdOf('alice'));
    expect(customerIdOf('alice')).not.toBe(customerIdOf('bob'));
    expect(customerIdOf('alice')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
