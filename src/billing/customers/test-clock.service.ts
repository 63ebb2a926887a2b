import { BillingError, ErrorCode } from '../../common/errors';
import type { StripeEventSnapshot, StripeGateway, TestClockSnapshot } from '../../stripe/stripe.gateway';
import { clockTarget } from './clock-span';

export interface ClockAdvance {
  before: TestClockSnapshot;
  after: TestClockSnapshot;
  /** Advances it took (a month at most each). */
  steps: number;
  /** Wall time Stripe took to move the clock's objects. */
  elapsedMs: number;
  /** Stripe's events of the advance, oldest first. */
  events: StripeEventSnapshot[];
}

export interface TestClockServiceOptions {
  /** How long to wait for the clock to be `ready` again. */
  timeoutMs?: number;
  pollMs?: number;
}

/** Pages of events read after an advance at most (100 each). */
const MAX_EVENT_PAGES = 50;

/**
 * The test clock customers are created on (local mode, or by setting in test mode): found by
 * name, advanced, waited for. Everything goes through the gateway, so it works the same against
 * the emulator and Stripe's test mode.
 */
export class TestClockService {
  private readonly timeoutMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly gateway: StripeGateway,
    options: TestClockServiceOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.pollMs = options.pollMs ?? 200;
  }

  /** The newest clock named `name`, or null (it is created with the first customer). */
  async find(name: string): Promise<TestClockSnapshot | null> {
    const clocks = (await this.gateway.listTestClocks()).filter((c) => c.name === name && c.status !== 'internal_failure');
    clocks.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
    return clocks[0] ?? null;
  }

  async getOrThrow(name: string): Promise<TestClockSnapshot> {
    const clock = await this.find(name);
    if (!clock) throw new BillingError(ErrorCode.NOT_FOUND, `No test clock named "${name}" yet: it is created with the first customer (subscribe once, then advance it)`);
    return clock;
  }

  /**
   * Moves the clock named `name` by `spec` (`1month`, `7d`, an ISO date: see clockTarget), a
   * month at most per Stripe advance, and waits until Stripe has moved its customers' objects
   * (renewals, retries, trial ends), then reads the events the advance produced.
   */
  async advance(name: string, spec: string): Promise<ClockAdvance> {
    const before = await this.waitUntilReady(await this.getOrThrow(name));
    let target: Date;
    try {
      target = clockTarget(spec, before.frozenTime);
    } catch (error) {
      throw BillingError.badInput((error as Error).message, 'spec');
    }
    if (target.getTime() <= before.frozenTime.getTime()) {
      throw BillingError.badInput(`the clock is already at ${before.frozenTime.toISOString()}; a clock only moves forward`, 'spec');
    }
    // Stripe dates the events of a clock's customers in the clock's time, which may be close to
    // the wall clock's: the events of the advance are the ones that were not there before it.
    const since = new Date(Math.min(before.frozenTime.getTime(), Date.now()) - 1000);
    const earlier = new Set((await this.eventsSince(since)).map((e) => e.id));
    const startedAt = Date.now();
    // Stripe moves a clock at most two intervals of its shortest subscription at a time: a long
    // advance goes a month at a time (what monthly plans allow), each step waited for.
    let after = before;
    let steps = 0;
    while (after.frozenTime.getTime() < target.getTime()) {
      const step = new Date(Math.min(clockTarget('1month', after.frozenTime).getTime(), target.getTime()));
      await this.gateway.advanceTestClock({ id: before.id, to: step });
      after = await this.waitUntilReady(await this.gateway.retrieveTestClock(before.id));
      steps++;
    }
    const elapsedMs = Date.now() - startedAt;
    const events = (await this.eventsSince(since)).filter((e) => !earlier.has(e.id));
    return { before, after, steps, elapsedMs, events };
  }

  /** Polls until the clock is `ready`; an `internal_failure` or the timeout is an error. */
  async waitUntilReady(clock: TestClockSnapshot): Promise<TestClockSnapshot> {
    const deadline = Date.now() + this.timeoutMs;
    let current = clock;
    while (current.status === 'advancing') {
      if (Date.now() > deadline) {
        throw new BillingError(ErrorCode.PAYMENT_PROVIDER_ERROR, `The test clock ${clock.id} is still advancing after ${Math.round(this.timeoutMs / 1000)} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
      current = await this.gateway.retrieveTestClock(clock.id);
    }
    if (current.status !== 'ready') throw new BillingError(ErrorCode.PAYMENT_PROVIDER_ERROR, `The test clock ${clock.id} is ${current.status}`);
    return current;
  }

  /** Events created after `since`, oldest first (at most MAX_EVENT_PAGES pages). */
  private async eventsSince(since: Date): Promise<StripeEventSnapshot[]> {
    const events: StripeEventSnapshot[] = [];
    let startingAfter: string | undefined;
    for (let page = 0; page < MAX_EVENT_PAGES; page++) {
      const result = await this.gateway.listEvents({ createdAfter: since, startingAfter, limit: 100 });
      events.push(...result.data);
      if (!result.hasMore || !result.nextCursor) break;
      startingAfter = result.nextCursor;
    }
    return events.reverse();
  }
}
