/** A reason the control plane cannot start, told as is (no stack trace) by `exitWithError`. */
export class StartupError extends Error {
  override name = 'StartupError';
}
