/**
 * Tells the usage forwarding that rows were committed to the ledger, so it runs now rather than
 * at its next scheduled check. A process-wide signal: the ledger's writers (UsageService, the
 * shared-statement batcher) call usageRecorded() after their statement committed; the server
 * subscribes a debounced waker (src/jobs/usage-forward-waker.ts). Listeners must be cheap and
 * must not throw: they run on the request path, after the commit.
 */
type Listener = () => void;

const listeners = new Set<Listener>();

/** Subscribes `listener`; returns the function that unsubscribes it. */
export function onUsageRecorded(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Rows were committed to the usage ledger. */
export function usageRecorded(): void {
  for (const listener of listeners) listener();
}
