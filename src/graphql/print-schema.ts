import { printSchema } from 'graphql';
import { createSchema } from './schema';

/** The SDL of the API, as committed in schema.graphql. */
export async function printedSchema(): Promise<string> {
  return `${printSchema(await createSchema())}\n`;
}
