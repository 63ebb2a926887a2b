import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { authChecker } from './authorization';
import { resolvers } from './resolvers';

let cached: Promise<GraphQLSchema> | undefined;

/** The executable schema, built once per process from the resolvers. */
export function createSchema(): Promise<GraphQLSchema> {
  cached ??= buildSchema({ resolvers, authChecker, validate: false });
  return cached;
}
