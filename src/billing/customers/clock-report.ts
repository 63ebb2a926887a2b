import type { TestClockSnapshot } from '../../stripe/stripe.gateway';
import type { ClockAdvance } from './test-clock.service';

type Obj = Record<string, unknown>;

function str(value: unknown): string {
  return typeof value === 'string' ? value : value && typeof value === 'object' && typeof (value as Obj).id === 'string' ? ((value as Obj).id as string) : '';
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function day(seconds: unknown): string {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString().slice(0, 10) : '-';
}

function money(amount: number, currency: unknown): string {
  return `${(amount / 100).toFixed(2)} ${String(currency ?? '').toUpperCase()}`;
}

export function describeClock(clock: TestClockSnapshot): string {
  const advancing = clock.advancingTo ? ` (to ${clock.advancingTo.toISOString()})` : '';
  return `${clock.name ?? '(unnamed)'} ${clock.id}: ${clock.frozenTime.toISOString()}, ${clock.status}${advancing}`;
}

/**
 * What an advance did, for people: the invoices it produced (renewals with their amounts and
 * whether they were paid, failed payments with the next retry), the subscriptions whose status
 * changed, and how many events of each type Stripe sent (each delivered to the webhook route).
 */
export function describeAdvance(advance: ClockAdvance): string[] {
  const lines = [
    `Clock ${advance.after.name ?? advance.after.id} (${advance.after.id}) moved from ${advance.before.frozenTime.toISOString()} to ${advance.after.frozenTime.toISOString()} in ${(advance.elapsedMs / 1000).toFixed(1)} s${advance.steps > 1 ? ` (${advance.steps} steps of a month at most)` : ''}.`,
  ];
  const invoices = new Map<string, Obj>();
  const statuses: string[] = [];
  const counts = new Map<string, number>();
  for (const event of advance.events) {
    counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
    const object = event.object;
    if (event.type.startsWith('invoice.') && typeof object.id === 'string') invoices.set(object.id, object);
    const previous = event.previousAttributes?.status;
    if (event.type === 'customer.subscription.updated' && typeof previous === 'string' && previous !== object.status) {
      statuses.push(`  ${str(object.id)}: ${previous} -> ${str(object.status)}`);
    }
    if (event.type === 'customer.subscription.deleted') statuses.push(`  ${str(object.id)}: ended (${str(object.status)})`);
    if (event.type === 'customer.subscription.trial_will_end') statuses.push(`  ${str(object.id)}: trial ends on ${day(object.trial_end)}`);
  }
  if (invoices.size) {
    lines.push('Invoices:');
    for (const invoice of invoices.values()) lines.push(`  ${describeInvoice(invoice)}`);
  }
  if (statuses.length) lines.push('Subscriptions:', ...statuses);
  if (counts.size) {
    lines.push(`${advance.events.length} events:`);
    for (const [type, count] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(`  ${type} x${count}`);
  } else {
    lines.push('No events: nothing on this clock fell due.');
  }
  return lines;
}

function describeInvoice(invoice: Obj): string {
  const reason = invoice.billing_reason === 'subscription_cycle' ? 'renewal' : str(invoice.billing_reason) || 'invoice';
  const period = `${day(invoice.period_start)}..${day(invoice.period_end)}`;
  const amount = money(num(invoice.amount_due), invoice.currency);
  let state = str(invoice.status);
  if (state === 'open' && num(invoice.attempt_count) > 0) {
    state = `payment failed (attempt ${num(invoice.attempt_count)}${invoice.next_payment_attempt ? `, next ${day(invoice.next_payment_attempt)}` : ', no retry left'})`;
  }
  return `${str(invoice.id)} ${reason} of ${str(invoice.customer)} ${period}: ${amount}, ${state}`;
}
