/**
 * The entitlement questions a backend asks on every gated request, for `npm run bench`:
 * `hasEntitlement`, `viewer.entitlements` and `viewer.limits` (the Pro plan's limit on `api_calls`, with this period's usage) for a seeded user on a Pro trial. All are answered
 * from PostgreSQL; the targets are the issue's: p99 under 5 ms and at least 0.8x the bare
 * server's rate for a trivial query.
 */
import type { LoadTarget } from './lib/load';
import type { SeededUser } from './lib/seed';
import { gql } from './lib/seed';

const HAS_ENTITLEMENT = `query($feature: String!) { hasEntitlement(feature: $feature) }`;
const VIEWER_ENTITLEMENTS = `{ viewer { entitlements { feature active } } }`;
const VIEWER_LIMITS = `{ viewer { limits { meter limit used remaining resetsAt kind } } }`;

export const ENTITLEMENT_TARGETS = {
  hasEntitlement: { ceiling: 'bare query', minRatio: 0.8, maxP99Ms: 5 },
  'viewer.entitlements': { ceiling: 'bare query', minRatio: 0.8, maxP99Ms: 5 },
  // Usage moves with every event, so each answer reads it from PostgreSQL: `bare read` is the
  // stack's own cost for an answer that needs one read.
  'viewer.limits': { ceiling: 'bare query', minRatio: 0.8, maxP99Ms: 5, sameWork: 'bare read' },
};

type GraphQLTarget<S> = (server: S, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) => LoadTarget;

/** The three scenarios, after checking once that the user really has the feature (a wrong answer measured fast is worthless). */
export async function entitlementScenarios<S extends { info: Record<string, unknown> }>(tollgate: S, bare: S, users: SeededUser[], graphql: GraphQLTarget<S>) {
  const user = users[0];
  const url = tollgate.info.url as string;
  const answer = await gql<{ hasEntitlement: boolean }>(url, HAS_ENTITLEMENT, { feature: 'sso' }, user.token);
  if (!answer.hasEntitlement) throw new Error(`bench: ${user.userId} should have the Pro feature "sso"`);
  const auth = { authorization: `Bearer ${user.token}` };
  return [
    { scenario: 'bare read', server: bare, target: graphql(bare, `query($key: String!) { read(key: $key) }`, { key: 'bench' }) },
    { scenario: 'hasEntitlement', server: tollgate, target: graphql(tollgate, HAS_ENTITLEMENT, { feature: 'sso' }, auth) },
    { scenario: 'viewer.entitlements', server: tollgate, target: graphql(tollgate, VIEWER_ENTITLEMENTS, undefined, auth) },
    { scenario: 'viewer.limits', server: tollgate, target: graphql(tollgate, VIEWER_LIMITS, undefined, auth) },
  ];
}
