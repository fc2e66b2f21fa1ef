/**
 * Preset sizes, after DOMAIN.md "Sizes". `pupils` is the roll on the generated "today";
 * over several years more distinct pupils pass through (leavers and joiners).
 */

export const PRESET_NAMES = ['tiny', 'primary', 'secondary', 'large'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  readonly name: PresetName;
  readonly description: string;
  readonly phase: 'primary' | 'secondary';
  /** Pupils on roll on "today". */
  readonly pupils: number;
  /** Academic years of history; the last is 2024/25. */
  readonly years: number;
  /** Target size of a registration group. */
  readonly formSize: number;
  /** Target size of an option or sixth-form class. */
  readonly optionClassSize: number;
  /** 0-based index, in the last academic year's school days, of the generated "today". */
  readonly todayIndex: number;
}

export const FINAL_ACADEMIC_YEAR = 2024;

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  tiny: {
    name: 'tiny',
    description: '≈30 pupils in Years 7–13 over 2 years, every edge case present; for unit tests',
    phase: 'secondary',
    pupils: 30,
    years: 2,
    formSize: 6,
    optionClassSize: 4,
    todayIndex: 185,
  },
  primary: {
    name: 'primary',
    description: '≈250 pupils, Reception to Year 6, 1 year',
    phase: 'primary',
    pupils: 250,
    years: 1,
    formSize: 30,
    optionClassSize: 30,
    todayIndex: 185,
  },
  secondary: {
    name: 'secondary',
    description: '≈1,100 pupils, Years 7–13, 1 year',
    phase: 'secondary',
    pupils: 1100,
    years: 1,
    formSize: 28,
    optionClassSize: 22,
    todayIndex: 185,
  },
  large: {
    name: 'large',
    description: '2,000 pupils, Years 7–13, 3 years (≈2.3 M session marks)',
    phase: 'secondary',
    pupils: 2000,
    years: 3,
    formSize: 28,
    optionClassSize: 22,
    todayIndex: 185,
  },
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export function getPreset(name: string): Preset {
  if (!isPresetName(name)) {
    throw new Error(`unknown preset "${name}" (choose ${PRESET_NAMES.join(', ')})`);
  }
  return PRESETS[name];
}

/** Share of the roll in each NC year (secondary with sixth form, or primary R–6). */
export function yearShares(phase: Preset['phase']): readonly (readonly [number, number])[] {
  if (phase === 'primary') return [0, 1, 2, 3, 4, 5, 6].map((y) => [y, 1 / 7] as const);
  return [
    [7, 0.155],
    [8, 0.155],
    [9, 0.155],
    [10, 0.155],
    [11, 0.155],
    [12, 0.12],
    [13, 0.105],
  ];
}
