import { BillingError, ErrorCode } from '../common/errors';
import type { StripeEventSnapshot, StripeGateway } from './stripe.gateway';

function billingDisabled(): BillingError {
  return new BillingError(ErrorCode.BILLING_DISABLED, 'Billing is disabled');
}

const refuse = (): Promise<never> => Promise.reject(billingDisabled());

/**
 * The gateway when billing is disabled (ENABLE_BILLING=false): it talks to nobody and every call
 * fails with BILLING_DISABLED, so services take a gateway, never null, and need no check of
 * their own. `@RequiresBilling` still refuses billing fields before a resolver runs; this is
 * what a call that slips past it gets. Background work asks `enabled` before starting.
 */
export class DisabledStripeGateway implements StripeGateway {
  readonly enabled = false;
  /** Never reached: no request is sent and no event is accepted. */
  readonly mode = 'test' as const;

  createCustomer = refuse;
  retrieveCustomer = refuse;

  createProduct = refuse;
  updateProduct = refuse;
  listProducts = refuse;
  createPrice = refuse;
  updatePrice = refuse;
  listPrices = refuse;
  retrievePrice = refuse;
  createMeter = refuse;
  listMeters = refuse;

  createSubscription = refuse;
  retrieveSubscription = refuse;
  updateSubscription = refuse;
  cancelSubscription = refuse;
  resumeSubscription = refuse;
  listSubscriptions = refuse;
  changeSubscriptionItems = refuse;
  previewSubscriptionInvoice = refuse;

  createScheduleFromSubscription = refuse;
  updateSchedulePhases = refuse;
  releaseSchedule = refuse;
  retrieveSchedule = refuse;

  createCheckoutSession = refuse;
  retrieveCheckoutSession = refuse;
  expireCheckoutSession = refuse;
  createBillingPortalSession = refuse;

  listInvoices = refuse;
  retrieveInvoice = refuse;

  sendMeterEvents = refuse;

  retrieveEvent = refuse;
  listEvents = refuse;
  constructWebhookEvent(): StripeEventSnapshot {
    throw billingDisabled();
  }

  listFeatures = refuse;
  createFeature = refuse;
  updateFeature = refuse;
  listProductFeatures = refuse;
  attachProductFeature = refuse;
  detachProductFeature = refuse;
  listActiveEntitlements = refuse;

  readonly customerTestClock = null;
  findOrCreateTestClock = refuse;
  retrieveTestClock = refuse;
  listTestClocks = refuse;
  advanceTestClock = refuse;
  switchTestCard = refuse;
}
