/**
 * Group commit: concurrent callers' items share statements. An item submitted while fewer than
 * `maxInFlight` statements run goes out at once (or at the end of the current turn of the event
 * loop, with `gatherTurn`); items submitted while the statements are busy wait and go together in
 * the next one, up to `maxBatch`. Each caller is answered with its own outcome once the
 * statement that carried it is over, and the items that waited meanwhile are sent first, so
 * their statement runs while these callers are answered.
 *
 * `run` answers one outcome per item, in order. When it throws, every item of that statement
 * is rejected with the error; a caller that wants another policy (retry each alone, answer a
 * "failed" outcome) does it inside `run`.
 */
export class GroupCommit<I, O> {
  private readonly queue: { item: I; resolve: (outcome: O) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: { maxInFlight?: number; maxBatch?: number; gatherTurn?: boolean } = {},
  ) {
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.maxBatch = Math.max(1, options.maxBatch ?? 100);
  }

  /** Whether nothing is queued or running: the group may be dropped by whoever keeps it. */
  get idle(): boolean {
    return this.inFlight === 0 && this.queue.length === 0 && !this.scheduled;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.options.gatherTurn) return this.startQueued();
      if (this.scheduled || this.inFlight >= this.maxInFlight) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.startQueued();
      });
    });
  }

  private startQueued(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      void this.flush(this.queue.splice(0, this.maxBatch));
    }
  }

  private async flush(batch: GroupCommit<I, O>['queue']): Promise<void> {
    this.inFlight++;
    let outcomes: O[] | null = null;
    let failure: unknown;
    try {
      outcomes = await this.run(batch.map((p) => p.item));
    } catch (error) {
      failure = error;
    } finally {
      this.inFlight--;
    }
    this.startQueued();
    batch.forEach((p, i) => (outcomes ? p.resolve(outcomes[i]) : p.reject(failure)));
  }
}

/**
 * A GroupCommit per key (a customer, for example): items of one key share statements, items of
 * different keys never do. A key's group is kept only while it has work, so the map holds no
 * more groups than there are keys with requests in flight.
 */
export class KeyedGroupCommit<I, O> {
  private readonly groups = new Map<string, GroupCommit<I, O>>();

  constructor(
    private readonly run: (key: string, items: I[]) => Promise<O[]>,
    private readonly options: { maxInFlight?: number; maxBatch?: number; gatherTurn?: boolean } = {},
  ) {}

  /** Groups with work now. */
  get size(): number {
    return this.groups.size;
  }

  async submit(key: string, item: I): Promise<O> {
    let group = this.groups.get(key);
    if (!group) {
      group = new GroupCommit((items) => this.run(key, items), this.options);
      this.groups.set(key, group);
    }
    try {
      return await group.submit(item);
    } finally {
      if (group.idle && this.groups.get(key) === group) this.groups.delete(key);
    }
  }
}
