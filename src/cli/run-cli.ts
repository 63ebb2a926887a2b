/** Ends a command with this exit code and message (stdout for 0, stderr otherwise). */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** A command-line parse error as an ExitError with code 2 and the usage text. */
export function usageError(error: unknown, usage: string): ExitError {
  if (error instanceof ExitError) return error;
  return new ExitError(2, `${error instanceof Error ? error.message : String(error)}\n${usage}`);
}

/**
 * Runs a command's `main`. A failure ends the process: an ExitError with its own code and
 * message, anything else with 1, after `describe` (when given) had a chance to word it.
 */
export function runCli(
  main: (argv: string[]) => Promise<unknown>,
  describe: (error: unknown) => { code: number; message: string } | undefined = () => undefined,
): void {
  // On success the process ends by itself, with any exitCode the command set.
  main(process.argv.slice(2)).catch(
    (error: unknown) => {
      if (error instanceof ExitError) {
        (error.exitCode === 0 ? process.stdout : process.stderr).write(`${error.message}\n`);
        process.exit(error.exitCode);
      }
      const described = describe(error) ?? { code: 1, message: error instanceof Error ? error.message : String(error) };
      process.stderr.write(`${described.message}\n`);
      process.exit(described.code);
    },
  );
}
