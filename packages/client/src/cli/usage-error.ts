/** The command line itself is wrong (exit code 2); the message says what to change. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    /** The command whose help the user should read. */
    readonly command?: string,
  ) {
    super(message);
  }
}
