/**
 * Emulator-only control routes under `/_emulator/` (no API key): clock, faults, meter event
 * counts, webhook delivery log, reset, finishing 3-D Secure on a PaymentIntent, and how a
 * payment method's charges behave from now on.
 */
import type { RawRequest, RawResponse } from './server';
import type { Store } from './store';
import type { FaultController, FaultSpec } from './faults';
import type { WebhookDelivery } from './webhooks';
import { meterLog } from './resources/meters';
import { authenticateIntent } from './resources/payment-intents';
import { authenticateSetupIntent } from './resources/setup-intents';
import { CHARGE_BEHAVIORS, type ChargeBehavior } from './resources/payment-methods';

export interface ControlDeps {
  store: Store;
  faults: FaultController;
  delivery: WebhookDelivery;
  advanceClock: (seconds: number) => void;
  reset: () => void;
}

function json(status: number, body: unknown): RawResponse {
  return { status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body, null, 2) };
}

function body(req: RawRequest): Record<string, any> {
  const text = req.body.toString('utf8').trim();
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : {};
  } catch {
    return Object.fromEntries(new URLSearchParams(text));
  }
}

export function controlRoutes(d: ControlDeps): (req: RawRequest) => RawResponse | undefined {
  return (req) => {
    if (!req.path.startsWith('/_emulator/')) return undefined;
    const path = req.path.slice('/_emulator'.length).replace(/\/$/, '');
    const m = req.method;
    try {
      if (path === '/health' && m === 'GET') return json(200, { ok: true });
      if (path === '/clock' && m === 'GET') return json(200, { now: d.store.now(), offset_seconds: d.store.clockOffsetSeconds });
      if (path === '/clock/advance' && m === 'POST') {
        const seconds = Number(body(req).seconds);
        if (!Number.isFinite(seconds) || seconds < 0) return json(400, { error: { message: 'seconds must be a non-negative number' } });
        d.advanceClock(seconds);
        return json(200, { now: d.store.now(), offset_seconds: d.store.clockOffsetSeconds });
      }
      if (path === '/faults') {
        if (m === 'GET') return json(200, { faults: d.faults.list() });
        if (m === 'DELETE') {
          d.faults.clear();
          return json(200, { faults: [] });
        }
        if (m === 'POST') {
          const b = body(req);
          const spec: FaultSpec = {
            status: b.status !== undefined ? Number(b.status) : undefined,
            delayMs: b.delayMs !== undefined ? Number(b.delayMs) : undefined,
            reset: b.reset === true || b.reset === 'true',
            count: b.count !== undefined ? Number(b.count) : undefined,
            path: b.path,
            method: b.method,
          };
          return json(200, { fault: d.faults.add(spec) });
        }
      }
      if (path === '/meter-events' && m === 'GET') return json(200, meterLog(d.store).stats());
      if (path === '/webhook-deliveries' && m === 'GET') return json(200, { pending: d.delivery.pendingCount(), deliveries: d.delivery.log });
      if (path === '/reset' && m === 'POST') {
        d.reset();
        return json(200, { ok: true });
      }
      const auth = /^\/payment_intents\/([^/]+)\/authenticate$/.exec(path);
      if (auth && m === 'POST') {
        const outcome = body(req).outcome ?? 'succeed';
        let pi: unknown;
        d.store.transaction(() => {
          pi = d.store.render(authenticateIntent(d.store, auth[1], outcome !== 'fail'));
        });
        return json(200, pi);
      }
      const setupAuth = /^\/setup_intents\/([^/]+)\/authenticate$/.exec(path);
      if (setupAuth && m === 'POST') {
        const outcome = body(req).outcome ?? 'succeed';
        let si: unknown;
        d.store.transaction(() => {
          si = d.store.render(authenticateSetupIntent(d.store, setupAuth[1], outcome !== 'fail'));
        });
        return json(200, si);
      }
      const behavior = /^\/payment_methods\/([^/]+)\/behavior$/.exec(path);
      if (behavior && m === 'POST') {
        // A card that worked until now starts failing (or the other way round), from the next charge on.
        const pm = d.store.get('payment_method', behavior[1]);
        if (!pm) return json(404, { error: { message: `No such payment method: ${behavior[1]}` } });
        const value = String(body(req).behavior ?? '');
        if (!CHARGE_BEHAVIORS.includes(value as ChargeBehavior)) {
          return json(400, { error: { message: `behavior must be one of ${CHARGE_BEHAVIORS.join(', ')}` } });
        }
        pm._behavior = value;
        return json(200, d.store.render(pm));
      }
      return json(404, { error: { message: `Unknown emulator control route ${m} ${req.path}` } });
    } catch (e) {
      return json(400, { error: { message: e instanceof Error ? e.message : String(e) } });
    }
  };
}
