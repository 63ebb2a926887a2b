import { TestClockRepository } from '../../billing/customers/test-clock.repository';
import type { TestClockSnapshot } from '../../stripe/stripe.gateway';
import { refetchOrEventCopy, type EventHandler } from './types';

/** The event's own copy of a clock, mapped as the gateway maps one it reads. */
function clockOf(object: Record<string, unknown>): TestClockSnapshot | null {
  if (typeof object.id !== 'string' || typeof object.frozen_time !== 'number') return null;
  return {
    id: object.id,
    name: typeof object.name === 'string' ? object.name : null,
    frozenTime: new Date(object.frozen_time * 1000),
    status: typeof object.status === 'string' ? object.status : 'ready',
    advancingTo: null,
    deletesAfter: null,
    createdAt: null,
  };
}

/**
 * `test_helpers.test_clock.*`: the time of a test clock our customers are on, so usage they
 * record is stamped with their billing time (the clock's), not the wall clock's. Clocks no
 * customer of ours is on are ignored; a deleted clock is forgotten.
 */
export const testClockHandler: EventHandler<TestClockSnapshot> = {
  types: ['test_helpers.test_clock.advancing', 'test_helpers.test_clock.ready', 'test_helpers.test_clock.internal_failure', 'test_helpers.test_clock.deleted'],

  async refetch(event, { gateway, em }) {
    const clock = clockOf(event.object);
    if (!clock) return null;
    if (!(await new TestClockRepository(em).hasCustomers(clock.id))) return null;
    if (event.type === 'test_helpers.test_clock.deleted') return { snapshot: clock, syncedAt: event.createdAt, current: false };
    return refetchOrEventCopy(event, clock, () => gateway.retrieveTestClock(clock.id));
  },

  async apply(event, fetched, { em }) {
    if (!fetched) return 'ignored';
    const clocks = new TestClockRepository(em);
    if (event.type === 'test_helpers.test_clock.deleted') await clocks.remove(fetched.snapshot.id);
    else await clocks.apply(fetched.snapshot, fetched.syncedAt);
    return 'processed';
  },
};
