import type { DiffSummary } from './diff.js';
import { DeltaError, DeltaErrorCode } from './errors.js';

/** Default share of the previous rows that may be updated or deleted in one run before a hold. */
export const DEFAULT_HOLD_THRESHOLD = 0.3;

export interface HoldOptions {
  /** Hold when (deletes + updates) / previousCount is strictly greater than this. Default 0.30. */
  readonly threshold?: number;
}

export interface HoldDecision {
  readonly hold: boolean;
  /** Why the delivery is held (only when `hold`). */
  readonly reason?: string;
  /** (deletes + updates) / previousCount; 0 for a first load (no previous rows). */
  readonly share: number;
}

/**
 * Whether to hold a delivery for review because it changes too much of what the partner already has:
 * hold when deletes + updates exceed `threshold` of the previous row count. Inserts never count, and a
 * first load (or a resync, or an empty previous snapshot: previousCount 0) is never held.
 */
export function holdDecision(summary: DiffSummary, options: HoldOptions = {}): HoldDecision {
  const threshold = options.threshold ?? DEFAULT_HOLD_THRESHOLD;
  if (typeof threshold !== 'number' || !(threshold >= 0)) {
    throw new DeltaError(DeltaErrorCode.InvalidInput, 'the hold threshold must be a number >= 0');
  }
  const { previousCount, updates, deletes } = summary;
  if (previousCount === 0) return { hold: false, share: 0 };
  const share = (deletes + updates) / previousCount;
  if (share <= threshold) return { hold: false, share };
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return {
    hold: true,
    share,
    reason:
      `${deletes} deletes + ${updates} updates = ${pct(share)} of the ${previousCount} previous rows, ` +
      `over the ${pct(threshold)} threshold`,
  };
}
