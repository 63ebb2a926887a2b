import type { ApolloServerPlugin } from '@apollo/server';
import { currentRequestScope } from './request-scope';

const DEFAULT_QUERY = `# Tollgate: products are public; the other queries need the token in Headers.
query Catalog {
  products {
    code
    name
    prices { id lookupKey currency unitAmount interval usageType meter }
  }
}
`;

/**
 * Whether a Host header names this machine's loopback interface. A page on another site that
 * rebinds its DNS name to 127.0.0.1 still sends its own name as Host, so it never qualifies.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * GraphiQL served from the package itself (no CDN), so it works with no network. In local mode
 * the dev token is put in the headers editor so the first query just works, but only for a
 * request whose Host is loopback (localhost, 127.x, [::1]): any other name may be a page that
 * rebound its DNS name to this machine, and would read the token from the page.
 *
 * The page (a 9 MB bundle inside @graphql-yoga/render-graphiql) is loaded when it is first asked
 * for, not at start-up: loading it costs the process about 45 MB of memory, which a server whose
 * playground nobody opens should not carry.
 */
export function playgroundPlugin(options: { devToken?: string } = {}): ApolloServerPlugin {
  const tokenHeaders = options.devToken ? JSON.stringify({ Authorization: `Bearer ${options.devToken}` }, null, 2) : undefined;
  const pages = new Map<boolean, string>();
  const page = () => {
    const withToken = tokenHeaders !== undefined && isLoopbackHost(currentRequestScope()?.host);
    let html = pages.get(withToken);
    if (html === undefined) {
      // A synchronous require on first use keeps the 9 MB bundle out of start-up (see above).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { renderGraphiQL } = require('@graphql-yoga/render-graphiql') as typeof import('@graphql-yoga/render-graphiql');
      const headers = withToken ? tokenHeaders : undefined;
      html = renderGraphiQL({
        title: 'Tollgate GraphQL playground',
        endpoint: '/graphql',
        defaultQuery: DEFAULT_QUERY,
        headers,
        defaultEditorToolsVisibility: headers ? 'headers' : undefined,
        shouldPersistHeaders: false,
      });
      pages.set(withToken, html);
    }
    return html;
  };
  return {
    async serverWillStart() {
      // Apollo asks for the landing page once, at start; `html` as a function defers the page
      // itself until a browser first opens it.
      return { async renderLandingPage() { return { html: async () => page() }; } };
    },
  };
}
