import type { Logger } from 'pino';

/**
 * Adds the `forward_usage` job when usage is recorded, at most once per `intervalMs` in this
 * process: the first recording after a quiet spell wakes the forwarding at once (after the
 * request that committed it, never inside it), and the recordings of a busy interval share one
 * wake-up at its end. A wake-up lost with the process (killed between the commit and the timer)
 * is made up for by the job's schedule (see startJobRunner).
 */
export class UsageForwardWaker {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly deps: {
      /** Adds the job (JobQueueRepository.addUsageForwardJob on some connection). */
      addJob: () => Promise<void>;
      intervalMs: number;
      log: Logger;
    },
  ) {}

  /** Usage was recorded: make sure a forwarding run follows. */
  wake(): void {
    if (this.timer || this.stopped) return;
    const wait = Math.max(0, this.lastAt + this.deps.intervalMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.lastAt = performance.now();
      this.deps.addJob().catch((error: unknown) => this.deps.log.warn({ err: error }, 'usage forwarding could not be woken'));
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
