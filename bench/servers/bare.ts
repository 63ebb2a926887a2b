/**
 * The ceiling: a bare Apollo Server 5 on Express 5, mounted exactly as Tollgate mounts its own
 * (express.json on /graphql, then expressMiddleware), answering a trivial query and mutation.
 * Whatever this server cannot exceed, no resolver on this stack can. Started as a child process
 * by bench/run.ts; reports its URL over IPC.
 */
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { onControl, reportReady } from './ipc';

const typeDefs = /* GraphQL */ `
  type Query { hello: String! }
  type Mutation { echo(value: String!): String! }
`;

const resolvers = {
  Query: { hello: () => 'world' },
  Mutation: { echo: (_: unknown, args: { value: string }) => args.value },
};

async function main(): Promise<void> {
  const apollo = new ApolloServer({ typeDefs, resolvers, stopOnTerminationSignals: false, plugins: [ApolloServerPluginLandingPageDisabled()] });
  await apollo.start();
  const app = express();
  app.disable('x-powered-by');
  app.use('/graphql', express.json({ limit: '100kb' }), expressMiddleware(apollo, { context: async () => ({}) }));
  const server = app.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    reportReady({ url: `http://127.0.0.1:${port}` });
  });
  onControl(async (cmd) => (cmd === 'memory' ? process.memoryUsage() : undefined), async () => {
    server.closeAllConnections();
    server.close();
    await apollo.stop();
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
