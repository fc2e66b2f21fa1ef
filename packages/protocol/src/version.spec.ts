import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  isCompatibleVersion,
  negotiateVersion,
  PROTOCOL_VERSION,
  parseProtocolVersion,
  SUPPORTED_PROTOCOL_VERSIONS,
} from './version.js';

describe('protocol versions', () => {
  it('are major.minor', () => {
    expect(parseProtocolVersion(PROTOCOL_VERSION)).toBeDefined();
    expect(parseProtocolVersion('1.12')).toEqual({ major: 1, minor: 12 });
    for (const bad of ['1', '1.0.0', 'v1.0', '01.0', '1.01', '', ' 1.0', '1.0 ', '-1.0', '1.x', 1.0, null]) {
      expect(parseProtocolVersion(bad)).toBeUndefined();
    }
  });

  it('are compatible within a major, whatever the minors', () => {
    expect(isCompatibleVersion('1.0', '1.9')).toBe(true);
    expect(isCompatibleVersion('1.3', '1.0')).toBe(true);
    expect(isCompatibleVersion('1.0', '2.0')).toBe(false);
    expect(isCompatibleVersion('1.0', 'garbage')).toBe(false);
  });

  it('negotiate to the lower minor of a shared major', () => {
    expect(negotiateVersion('1.4', '1.2')).toBe('1.2');
    expect(negotiateVersion('1.2', '1.4')).toBe('1.2');
    expect(negotiateVersion('1.0', '2.0')).toBeUndefined();
  });

  it('compare numerically, not as text', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('1.0', '2.0')).toBeLessThan(0);
    expect(compareVersions('1.2', '1.2')).toBe(0);
    expect(() => compareVersions('1', '1.0')).toThrow(RangeError);
  });

  it('support a range that ends at this build', () => {
    expect(SUPPORTED_PROTOCOL_VERSIONS.max).toBe(PROTOCOL_VERSION);
    expect(
      compareVersions(SUPPORTED_PROTOCOL_VERSIONS.min, SUPPORTED_PROTOCOL_VERSIONS.max),
    ).toBeLessThanOrEqual(0);
    expect(isCompatibleVersion(SUPPORTED_PROTOCOL_VERSIONS.min, SUPPORTED_PROTOCOL_VERSIONS.max)).toBe(true);
  });
});
