/**
 * Identifier rules for the pupil numbers the demo school holds.
 *
 * UPN (DfE): 13 characters, a check letter then 12 digits (LA code, establishment number,
 * two-digit year of allocation, three-digit serial). The check letter is the sum of
 * characters 2–13, each multiplied by its position (2..13), modulo 23, mapped onto the
 * alphabet without I, O and S.
 *
 * ULN (Learning Records Service): 10 digits, the first not zero, the last a check digit:
 * the first nine digits weighted 10..2, summed, modulo 11; check = 10 − remainder, and a
 * remainder of 0 (check 10) makes the number invalid.
 */

export const UPN_CHECK_LETTERS = 'ABCDEFGHJKLMNPQRTUVWXYZ';

/** Check letter for the 12 digits that follow it. Throws on anything but 12 digits. */
export function upnCheckLetter(digits: string): string {
  if (!/^\d{12}$/.test(digits)) throw new Error('a UPN check letter needs exactly 12 digits');
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(digits[i]) * (i + 2);
  return UPN_CHECK_LETTERS[sum % 23]!;
}

/** True for a well-formed permanent UPN whose check letter matches. */
export function isValidUpn(upn: unknown): boolean {
  if (typeof upn !== 'string' || !/^[A-Z]\d{12}$/.test(upn)) return false;
  return upnCheckLetter(upn.slice(1)) === upn[0];
}

/** Builds a UPN from its parts: LA code (3 digits), establishment (4), year (0–99), serial (0–999). */
export function makeUpn(laCode: string, estab: string, year: number, serial: number): string {
  const digits = `${laCode}${estab}${String(year % 100).padStart(2, '0')}${String(serial).padStart(3, '0')}`;
  return `${upnCheckLetter(digits)}${digits}`;
}

/** Check digit for the first nine digits of a ULN, or null when no check digit exists (remainder 0). */
export function ulnCheckDigit(nineDigits: string): number | null {
  if (!/^[1-9]\d{8}$/.test(nineDigits))
    throw new Error('a ULN check digit needs nine digits, the first not 0');
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(nineDigits[i]) * (10 - i);
  const check = 10 - (sum % 11);
  return check === 10 ? null : check;
}

export function isValidUln(uln: unknown): boolean {
  if (typeof uln !== 'string' || !/^[1-9]\d{9}$/.test(uln)) return false;
  return ulnCheckDigit(uln.slice(0, 9)) === Number(uln[9]);
}
