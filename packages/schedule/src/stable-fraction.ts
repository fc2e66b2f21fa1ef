import { hash } from 'node:crypto';

const TWO_POW_48 = 2 ** 48;

/**
 * A fraction in [0, 1) that depends only on `seed`: the first 48 bits of SHA-256(UTF-8 seed),
 * divided by 2^48. The planner places a (school, extract) at this fraction of each slot, so the
 * seed `${schoolId}:${extractId}` keeps its time across restarts and releases. Changing this
 * derivation moves every school's runs: the test freezes known values.
 */
export function stableFraction(seed: string): number {
  // Hex, not a Buffer: a string is cheaper to make and collect when a fleet is planned.
  return Number.parseInt(hash('sha256', seed, 'hex').slice(0, 12), 16) / TWO_POW_48;
}
