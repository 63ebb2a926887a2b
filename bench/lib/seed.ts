import { signToken } from '../../src/auth/dev-secret';

export async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (res.status !== 200 || body.errors) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body.errors ?? body)}`);
  return body.data as T;
}

export interface SeededUser {
  userId: string;
  token: string;
  subscriptionIds: string[];
  /** A live subscription with a metered price (pro), for recordUsage. */
  meteredSubscriptionId: string;
}

const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const CANCEL = `mutation($id: ID!) { cancelSubscription(id: $id, atPeriodEnd: false) { id status } }`;

/**
 * A few users, each with several subscriptions made through the API the way a client would:
 * a starter plan canceled and restarted on the yearly price, and pro (with its metered item),
 * all on trials so they are TRIALING without a card. Four subscriptions per user, three plans.
 */
export async function seedUsers(url: string, jwtSecret: string, count: number, first = 0): Promise<SeededUser[]> {
  const users: SeededUser[] = [];
  for (let i = first; i < first + count; i++) {
    const userId = `bench-user-${i}`;
    const token = await signToken(jwtSecret, userId, { email: `${userId}@example.com`, expiresIn: '1d' });
    const start = async (input: Record<string, unknown>) =>
      (await gql<{ startSubscription: { subscription: { id: string } } }>(url, START, { input }, token)).startSubscription.subscription.id;
    const ids: string[] = [];
    const first = await start({ plan: 'starter', trialDays: 14, idempotencyKey: `${userId}-1` });
    await gql(url, CANCEL, { id: first }, token);
    ids.push(first);
    const second = await start({ plan: 'pro', interval: 'YEAR', trialDays: 30, quantity: 2, idempotencyKey: `${userId}-2` });
    await gql(url, CANCEL, { id: second }, token);
    ids.push(second);
    ids.push(await start({ plan: 'starter', interval: 'YEAR', trialDays: 14, idempotencyKey: `${userId}-3` }));
    const pro = await start({ plan: 'pro', trialDays: 14, quantity: 3, idempotencyKey: `${userId}-4` });
    ids.push(pro);
    users.push({ userId, token, subscriptionIds: ids, meteredSubscriptionId: pro });
  }
  return users;
}

/** A user of its own with one trialing subscription to `plan` (through the API). */
export async function seedPlanUser(url: string, jwtSecret: string, userId: string, plan: string): Promise<{ token: string; subscriptionId: string }> {
  const token = await signToken(jwtSecret, userId, { email: `${userId}@example.com`, expiresIn: '1d' });
  const started = await gql<{ startSubscription: { subscription: { id: string } } }>(url, START, { input: { plan, trialDays: 14, idempotencyKey: `${userId}-1` } }, token);
  return { token, subscriptionId: started.startSubscription.subscription.id };
}
