/** Stripe-style object ids (`cus_...`, `cs_test_...`) and secrets. */
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * While a request runs, its random bytes come from a seed (SHA-256 of seed and a counter) so that
 * replaying the request from the journal after a crash gives the same ids and secrets.
 */
let seeded: { seed: Buffer; counter: number } | null = null;

function bytesFor(length: number): Buffer {
  if (!seeded) return randomBytes(length);
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const block = createHash('sha256').update(seeded.seed).update(String(seeded.counter++)).digest();
    done += block.copy(out, done);
  }
  return out;
}

/** Runs fn with random bytes drawn from `seed` (a fresh random seed of 16 bytes or more). */
export function withSeed<T>(seed: Buffer, fn: () => T): T {
  const outer = seeded;
  seeded = { seed, counter: 0 };
  try {
    return fn();
  } finally {
    seeded = outer;
  }
}

export function randomToken(length: number): string {
  const bytes = bytesFor(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i] % ALPHABET.length];
  return out;
}

export function newId(prefix: string, length = 24): string {
  return `${prefix}${randomToken(length)}`;
}
