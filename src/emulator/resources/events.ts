/** Events (`/v1/events`) and webhook endpoints (`/v1/webhook_endpoints`). */
import { invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, bool, rangeFilter, str, strList } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { DEFAULT_API_VERSION } from '../store';
import type { WebhookDelivery } from '../webhooks';

export function createWebhookEndpoint(
  store: Store,
  delivery: WebhookDelivery,
  f: { url: string; secret?: string; enabledEvents?: string[]; description?: string | null; metadata?: Obj; apiVersion?: string | null },
): Obj {
  const we: Obj = {
    id: newId('we_'),
    object: 'webhook_endpoint',
    api_version: f.apiVersion ?? null,
    application: null,
    created: store.now(),
    description: f.description ?? null,
    enabled_events: f.enabledEvents && f.enabledEvents.length ? f.enabledEvents : ['*'],
    livemode: false,
    metadata: f.metadata ?? {},
    status: 'enabled',
    url: f.url,
    _secret: f.secret ?? `whsec_${randomToken(32)}`,
  };
  store.insert('webhook_endpoint', we);
  sync(delivery, we);
  return we;
}

function sync(delivery: WebhookDelivery, we: Obj): void {
  delivery.setEndpoint({ id: we.id, url: we.url, secret: we._secret, enabledEvents: we.enabled_events, disabled: we.status !== 'enabled' });
}

function validUrl(url: string | undefined): string {
  if (!url) throw invalidRequest('Missing required param: url.', 'url', 'parameter_missing');
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw invalidRequest('Invalid URL: An explicit scheme (such as https) must be provided.', 'url', 'url_invalid');
  }
  return url;
}

export function registerEvents(router: Router, store: Store, delivery: WebhookDelivery): void {
  router.add('GET', '/v1/events/:id', (ctx) => {
    const e = store.get('event', ctx.pathParams.id);
    if (!e) throw noSuch('event', ctx.pathParams.id, 'id');
    return out(ctx, e);
  });

  router.add('GET', '/v1/events', (ctx) => {
    const p = ctx.params;
    let items = store.list('event');
    const type = str(p, 'type');
    if (type) {
      const re = new RegExp('^' + type.replace(/[.]/g, '\\.').replace(/\*/g, '.*') + '$');
      items = items.filter((e) => re.test(e.type));
    }
    const types = strList(p, 'types');
    if (types) items = items.filter((e) => types.includes(e.type));
    const created = rangeFilter(p, 'created');
    if (created) items = items.filter((e) => created(e.created));
    return listOut(ctx, items);
  });

  router.add('POST', '/v1/webhook_endpoints', (ctx) => {
    const p = ctx.params;
    const url = validUrl(str(p, 'url'));
    const events = strList(p, 'enabled_events');
    if (!events || events.length === 0) throw invalidRequest('Missing required param: enabled_events.', 'enabled_events', 'parameter_missing');
    const we = createWebhookEndpoint(store, delivery, {
      url,
      enabledEvents: events,
      description: str(p, 'description'),
      metadata: applyMetadata({}, p),
      apiVersion: str(p, 'api_version') ?? null,
    });
    // The signing secret is returned on creation only, as on Stripe.
    return { ...out(ctx, we), secret: we._secret };
  });

  router.add('GET', '/v1/webhook_endpoints/:id', (ctx) => {
    const we = store.get('webhook_endpoint', ctx.pathParams.id);
    if (!we) throw noSuch('webhook_endpoint', ctx.pathParams.id, 'id');
    return out(ctx, we);
  });

  router.add('POST', '/v1/webhook_endpoints/:id', (ctx) => {
    const we = store.get('webhook_endpoint', ctx.pathParams.id);
    if (!we) throw noSuch('webhook_endpoint', ctx.pathParams.id, 'id');
    const p = ctx.params;
    if ('url' in p) we.url = validUrl(str(p, 'url'));
    const events = strList(p, 'enabled_events');
    if (events && events.length) we.enabled_events = events;
    const disabled = bool(p, 'disabled');
    if (disabled !== undefined) we.status = disabled ? 'disabled' : 'enabled';
    if ('description' in p) we.description = str(p, 'description') ?? null;
    we.metadata = applyMetadata(we.metadata, p);
    sync(delivery, we);
    return out(ctx, we);
  });

  router.add('DELETE', '/v1/webhook_endpoints/:id', (ctx) => {
    const we = store.get('webhook_endpoint', ctx.pathParams.id);
    if (!we) throw noSuch('webhook_endpoint', ctx.pathParams.id, 'id');
    store.remove('webhook_endpoint', we.id);
    delivery.removeEndpoint(we.id);
    return { id: we.id, object: 'webhook_endpoint', deleted: true };
  });

  router.add('GET', '/v1/webhook_endpoints', (ctx) => listOut(ctx, store.list('webhook_endpoint')));
}

export { DEFAULT_API_VERSION };
