import { priceHandler, productHandler } from './catalog.handler';
import { checkoutSessionHandler } from './checkout.handler';
import { customerHandler } from './customer.handler';
import { entitlementSummaryHandler } from './entitlements.handler';
import { invoiceHandler } from './invoice.handler';
import { subscriptionHandler } from './subscription.handler';
import { subscriptionScheduleHandler } from './subscription-schedule.handler';
import { testClockHandler } from './test-clock.handler';
import type { EventHandler } from './types';

/** Event type -> handler. Every type not registered is stored as `ignored` and never enqueued. */
export class EventHandlerRegistry {
  private readonly byType = new Map<string, EventHandler>();

  register<S>(handler: EventHandler<S>): this {
    for (const type of handler.types) {
      if (this.byType.has(type)) throw new Error(`two handlers for ${type}`);
      this.byType.set(type, handler as EventHandler);
    }
    return this;
  }

  handlerFor(type: string): EventHandler | undefined {
    return this.byType.get(type);
  }

  handles(type: string): boolean {
    return this.byType.has(type);
  }
}

/** One line per event family. */
export const eventHandlers = new EventHandlerRegistry()
  .register(subscriptionHandler)
  .register(invoiceHandler)
  .register(checkoutSessionHandler)
  .register(customerHandler)
  .register(productHandler)
  .register(priceHandler)
  .register(entitlementSummaryHandler)
  .register(subscriptionScheduleHandler)
  .register(testClockHandler);
