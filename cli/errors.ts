// Errors the CLI reports as one line `qgen: <message>` (no stack trace): the user gave something we refuse.

/** Bad input (a spec with problems, an unknown kernel name, a missing generator module): exit code 1. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Bad command-line usage (unknown option, bad value): exit code 2. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}
