import type { Request, RequestHandler } from 'express';
import {
  getNullableType,
  isLeafType,
  Kind,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLLeafType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import type { Logger } from 'pino';
import type { AuthUser } from '../../auth/auth-user';
import { operationKey, plainGraphQLRequest } from '../../graphql/plain-request';
import type { MutationRateLimiter, RateLimitDecision } from '../../security/mutation-rate-limiter';
import { complexityError, costVariables } from '../../security/query-limits';
import type { PreparedUsage, RecordUsageInput, UsageRecord, UsageService } from './usage.service';

/** Distinct query texts whose eligibility is remembered. */
const MAX_KNOWN_TEXTS = 1000;

/**
 * What the fast path already did for a request it handed on to Apollo: the usage budget it
 * drew (the security plugin uses this decision instead of drawing again), and the key it
 * generated when the statement it sent under that key failed (the resolver records under the
 * same key, so a row that was committed after all is found, not written twice).
 */
export interface UsageHandoff {
  decision: RateLimitDecision;
  generatedKey?: string;
}

const handoffs = new WeakMap<Request, UsageHandoff>();

/** The handoff of a request the fast path passed on, if it did. */
export function usageHandoffOf(req: Request): UsageHandoff | undefined {
  return handoffs.get(req);
}

/** A recognized `recordUsage` operation: where its input is and how to write its answer. */
interface Plan {
  operation: OperationDefinitionNode;
  inputVariable: string;
  typename: string;
  rootKey: string;
  fields: { key: string; name: string; type: GraphQLLeafType | null }[];
}

export interface UsageFastPathOptions {
  schema: GraphQLSchema;
  /** The validation rules Apollo runs besides graphql-js's own (depth and alias limits). */
  validationRules: readonly ValidationRule[];
  maxComplexity: number;
  usageLimiter: MutationRateLimiter | null;
  /** The check Apollo's context runs; throws for a bad token. */
  authenticate: ((req: Request) => Promise<AuthUser | null>) | undefined;
  /** Whether recordUsage can run at all (billing enabled, a gateway configured). */
  billingEnabled: boolean;
  service: UsageService;
  log: Logger;
}

/**
 * `recordUsage` without Apollo, for the request a metering backend sends over and over: a JSON
 * POST of one `recordUsage(input: $variable)` mutation with plain fields of the record, from a
 * user acting for itself. Through Apollo (its request pipeline, variable coercion into
 * type-graphql's input classes, resolver dispatch) such a request cost the server about 0.5 ms of
 * CPU in the benchmark; here, with the same checks in the same order, about 0.3 ms.
 *
 * Only the successful answer is written here: a new event recorded, or a retry of a recorded one.
 * Everything else goes on to Apollo before anything is written (unknown or different text,
 * variables that do not coerce, no or a bad token, an admin's `customerId`, input the service
 * refuses) or after the shared statement wrote nothing (no matching subscription, a key reused
 * with other input, a failed statement), with a handoff so that the usage budget is drawn once
 * and a generated key is reused. Apollo then answers exactly as it always does, error codes
 * included.
 *
 * A text is recognized once: parsed, validated with the same rules as Apollo's, and found within
 * the complexity limit (which cannot depend on the input), so the fast path never accepts
 * something Apollo would refuse.
 */
export class UsageFastPath {
  private readonly plans = new Map<string, Plan | null>();

  constructor(private readonly options: UsageFastPathOptions) {}

  middleware(): RequestHandler {
    return (req, res, next) => {
      if (!this.options.billingEnabled || req.headers.authorization === undefined) return next();
      const request = plainGraphQLRequest(req);
      if (!request || !request.query.includes('recordUsage')) return next();
      const plan = this.planFor(request.query, request.operationName);
      if (!plan) return next();
      this.record(req, plan, request.variables ?? {}).then(
        (record) => {
          if (!record) return next();
          res.setHeader('content-type', 'application/json; charset=utf-8');
          res.send(`${JSON.stringify({ data: { [plan.rootKey]: answer(plan, record) } })}\n`);
        },
        (error) => {
          // Not expected (every refusal is Apollo's to answer); Apollo answers this request.
          this.options.log.warn({ err: error }, 'recordUsage fast path failed; the request went to Apollo');
          next();
        },
      );
    };
  }

  /** The record, or null when Apollo is to answer (with what was done recorded as the handoff). */
  private async record(req: Request, plan: Plan, variables: Record<string, unknown>): Promise<UsageRecord | null> {
    const { coerced, errors } = getVariableValues(this.options.schema, plan.operation.variableDefinitions ?? [], variables);
    if (errors || !coerced) return null;
    const input = coerced[plan.inputVariable] as (RecordUsageInput & { customerId?: string | null }) | null | undefined;
    if (!input || input.customerId != null) return null;

    let user: AuthUser | null;
    try {
      user = this.options.authenticate ? await this.options.authenticate(req) : null;
    } catch {
      return null;
    }
    if (!user) return null;

    const { service, usageLimiter } = this.options;
    let prepared: PreparedUsage;
    try {
      prepared = service.prepare(input);
    } catch {
      return null;
    }
    // The same budget and key the security plugin draws from for this document (one point).
    const decision: RateLimitDecision = usageLimiter ? await usageLimiter.consume(`user:${user.userId}`, 1) : { allowed: true, remaining: Infinity };
    if (!decision.allowed) {
      handoffs.set(req, { decision });
      return null;
    }
    let record: UsageRecord | null;
    try {
      record = await service.recordShared(user.userId, prepared);
    } catch {
      // IDEMPOTENCY_CONFLICT: nothing was written.
      record = null;
    }
    if (!record) {
      const generated = input.idempotencyKey == null && prepared.keyMayExist ? prepared.key : undefined;
      handoffs.set(req, { decision, generatedKey: generated });
    }
    return record;
  }

  private planFor(query: string, operationName: string | null | undefined): Plan | null {
    const key = operationKey(query, operationName);
    let plan = this.plans.get(key);
    if (plan === undefined) {
      plan = this.compile(query, operationName);
      if (this.plans.size >= MAX_KNOWN_TEXTS) this.plans.delete(this.plans.keys().next().value!);
      this.plans.set(key, plan);
    }
    return plan;
  }

  private compile(query: string, operationName: string | null | undefined): Plan | null {
    const { schema } = this.options;
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch {
      return null;
    }
    if (document.definitions.length !== 1) return null;
    const [operation] = document.definitions;
    if (operation.kind !== Kind.OPERATION_DEFINITION || operation.operation !== 'mutation' || operation.directives?.length) return null;
    if (operationName != null && operation.name?.value !== operationName) return null;
    if (validate(schema, document, [...specifiedRules, ...this.options.validationRules]).length) return null;
    if (costVariables(schema, document).length) return null;
    if (complexityError({ schema, document, operationName, variables: {}, maxComplexity: this.options.maxComplexity })) return null;

    const [root, ...others] = operation.selectionSet.selections;
    if (others.length || root.kind !== Kind.FIELD || root.name.value !== 'recordUsage' || root.directives?.length) return null;
    const argument = root.arguments?.length === 1 ? root.arguments[0] : null;
    if (!argument || argument.name.value !== 'input' || argument.value.kind !== Kind.VARIABLE) return null;
    const definitions = operation.variableDefinitions ?? [];
    if (definitions.length !== 1 || definitions[0].directives?.length) return null;

    const recordType = schema.getMutationType()?.getFields().recordUsage?.type;
    const objectType = recordType && getNullableType(recordType);
    if (!objectType || !('getFields' in objectType)) return null;
    const typeFields = objectType.getFields();
    const fields: Plan['fields'] = [];
    for (const selection of root.selectionSet?.selections ?? []) {
      if (selection.kind !== Kind.FIELD || selection.directives?.length || selection.arguments?.length || selection.selectionSet) return null;
      const name = selection.name.value;
      const key = selection.alias?.value ?? name;
      if (name === '__typename') {
        fields.push({ key, name, type: null });
        continue;
      }
      const type = typeFields[name] && getNullableType(typeFields[name].type);
      if (!type || !isLeafType(type)) return null;
      fields.push({ key, name, type });
    }
    return { operation, inputVariable: argument.value.name.value, typename: objectType.name, rootKey: root.alias?.value ?? root.name.value, fields };
  }
}

/** The record as graphql-js would write the selection: fields in selection order, values through their scalars. */
function answer(plan: Plan, record: UsageRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, name, type } of plan.fields) {
    if (key in out) continue;
    out[key] = type === null ? plan.typename : type.serialize((record as unknown as Record<string, unknown>)[name]);
  }
  return out;
}
