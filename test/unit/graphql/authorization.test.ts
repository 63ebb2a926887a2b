import 'reflect-metadata';
import { graphql, type GraphQLSchema } from 'graphql';
import { Authorized, buildSchema, Ctx, Query, Resolver } from 'type-graphql';
import { BillingError } from '../../../src/common/errors';
import type { AuthUser, GraphQLContext } from '../../../src/graphql/context';
import { ADMIN, authChecker, CurrentUser } from '../../../src/graphql/authorization';

@Resolver()
class ProbeResolver {
  @Query(() => String)
  open(): string {
    return 'open';
  }

  @Query(() => String)
  @Authorized()
  signedIn(@Ctx() _ctx: GraphQLContext, @CurrentUser() user: AuthUser): string {
    return user.userId;
  }

  @Query(() => String)
  @Authorized(ADMIN)
  adminOnly(): string {
    return 'admin';
  }
}

const user = (isAdmin: boolean): AuthUser => ({ userId: isAdmin ? 'root' : 'pat', roles: isAdmin ? ['admin'] : [], isAdmin });

describe('declared authorization (authChecker)', () => {
  let schema: GraphQLSchema;
  beforeAll(async () => {
    schema = await buildSchema({ resolvers: [ProbeResolver], authChecker, validate: false });
  });

  async function codes(field: string, caller: AuthUser | null): Promise<{ data: unknown; code: unknown }> {
    const res = await graphql({ schema, source: `{ ${field} }`, contextValue: { user: caller } as unknown as GraphQLContext });
    const original = res.errors?.[0]?.originalError;
    return { data: res.data?.[field] ?? null, code: original instanceof BillingError ? original.code : (original?.constructor.name ?? null) };
  }

  it('answers UNAUTHENTICATED without a caller and FORBIDDEN to a non-admin on an admin field', async () => {
    expect(await codes('open', null)).toEqual({ data: 'open', code: null });
    expect(await codes('signedIn', null)).toEqual({ data: null, code: 'UNAUTHENTICATED' });
    expect(await codes('signedIn', user(false))).toEqual({ data: 'pat', code: null });
    expect(await codes('adminOnly', null)).toEqual({ data: null, code: 'UNAUTHENTICATED' });
    expect(await codes('adminOnly', user(false))).toEqual({ data: null, code: 'FORBIDDEN' });
    expect(await codes('adminOnly', user(true))).toEqual({ data: 'admin', code: null });
  });
});
