import { describe, expect, it } from 'vitest';
import { JOB_QUEUE, JobHandlerRegistry, JobName } from './queue-registry.js';

describe('JobHandlerRegistry', () => {
  it('refuses to start while a registered job name has no processor', () => {
    const registry = new JobHandlerRegistry();
    expect(() => registry.assertComplete()).toThrow(
      /no processor for job\(s\) maintenance\.prune-enrolment-tokens/,
    );
    registry.register('MaintenanceProcessor', Object.keys(JOB_QUEUE) as JobName[]);
    expect(() => registry.assertComplete()).not.toThrow();
  });

  it('refuses two processors for one job', () => {
    const registry = new JobHandlerRegistry();
    registry.register('A', [JobName.pruneEnrolmentTokens]);
    expect(() => registry.register('B', [JobName.pruneEnrolmentTokens])).toThrow(/two processors/);
  });
});
