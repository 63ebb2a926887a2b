/**
 * The small protocol between bench/run.ts and the servers it forks: a child reports `ready` once
 * it listens, answers `{id, cmd, args}` requests with `{id, ok, result | error}`, and exits on
 * `{cmd: 'stop'}`. IPC rather than stdout, so server logs never get mixed into the protocol.
 */
export interface ControlRequest {
  id: number;
  cmd: string;
  args?: unknown;
}

export function reportReady(info: Record<string, unknown>): void {
  process.send?.({ type: 'ready', ...info });
}

export function onControl(handle: (cmd: string, args: unknown) => Promise<unknown>, stop: () => Promise<void>): void {
  process.on('message', (message: ControlRequest) => {
    if (message.cmd === 'stop') {
      stop()
        .catch((error) => console.error(error))
        .finally(() => process.exit(0));
      return;
    }
    handle(message.cmd, message.args).then(
      (result) => process.send?.({ type: 'reply', id: message.id, ok: true, result }),
      (error: unknown) => process.send?.({ type: 'reply', id: message.id, ok: false, error: error instanceof Error ? error.stack : String(error) }),
    );
  });
  // The parent going away must not leave a server (and its database) behind.
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
}
