/**
 * Reconnect delays: exponential from `base` to `max`, with full jitter (a random delay between 0 and
 * the exponential bound), so thousands of agents that lost the control plane at once do not come back
 * in lock-step. `reset()` after a connection that authenticated.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly base = 100,
    private readonly max = 10_000,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const bound = Math.min(this.max, this.base * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(this.base / 2, Math.floor(this.random() * bound));
  }

  reset(): void {
    this.attempt = 0;
  }
}
