/** An error the agent reports to its operator: a stable code and a one-line message, no stack. */
export class AgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Process exit code when this ends a command. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/** Exit codes: 0 ok, 1 error, 2 usage, 3 refused by the control plane (do not restart blindly). */
export const EXIT_REFUSED = 3;
