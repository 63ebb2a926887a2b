import { BillingError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isId(value: string): boolean {
  return UUID.test(value);
}

/** Ids are UUIDs: anything else is a malformed id (BAD_USER_INPUT), not a missing object. */
export function assertId(value: string, field: string): void {
  if (!isId(value)) throw BillingError.badInput(`${field} is not a valid id`, field);
}
