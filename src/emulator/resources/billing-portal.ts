/** Billing portal sessions: `POST /v1/billing_portal/sessions` with a small hosted page at `url`. */
import { invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { str } from '../params';
import type { Router } from '../router';
import { out } from '../router';
import type { Store } from '../store';

export function registerBillingPortal(router: Router, store: Store): void {
  router.add('POST', '/v1/billing_portal/sessions', (ctx) => {
    const customer = str(ctx.params, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    if (!store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const id = newId('bps_');
    const token = randomToken(24);
    const session = {
      id,
      object: 'billing_portal.session',
      configuration: 'bpc_emulator_default',
      created: store.now(),
      customer,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: str(ctx.params, 'locale') ?? null,
      on_behalf_of: null,
      return_url: str(ctx.params, 'return_url') ?? null,
      url: `${store.baseUrl}/billing_portal/${id}?token=${token}`,
    };
    store.insert('billing_portal.session', session);
    return out(ctx, session);
  });
}
