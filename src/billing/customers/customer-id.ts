import { createHash } from 'node:crypto';

/**
 * The namespace of customer ids (a fixed random UUID): ids derived under it name Tollgate
 * customers and nothing else.
 */
export const CUSTOMER_ID_NAMESPACE = '5d1b7f8e-3c2a-4f6e-9b0d-8a4c2e7f1b63';

/**
 * The id of user `userId`'s customer row: the RFC 4122 version-5 (SHA-1, name-based) UUID of
 * the user id under CUSTOMER_ID_NAMESPACE. `viewer` answers it before the row exists, and the
 * mutation that later creates the row gives it the same id, so the id a client saw stays valid.
 * Rows created before ids were derived keep their random ones.
 */
export function customerIdOf(userId: string): string {
  return uuidV5(CUSTOMER_ID_NAMESPACE, userId);
}

/** RFC 4122 section 4.3: the SHA-1 of the namespace's 16 bytes and the name's UTF-8, with version 5 and the RFC variant set. */
export function uuidV5(namespace: string, name: string): string {
  const bytes = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
