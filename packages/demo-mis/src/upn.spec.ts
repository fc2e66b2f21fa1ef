import { describe, expect, it } from 'vitest';
import { isValidUln, isValidUpn, makeUpn, ulnCheckDigit, upnCheckLetter } from './upn.js';

describe('UPN check letter', () => {
  it('follows the DfE rule: digits 2–13 weighted by position, mod 23, letters without I, O, S', () => {
    // 8·2 + 7·3 + 3·4 + 4·5 + 0·6 + 1·7 + 2·8 + 2·9 + 4·10 + 0·11 + 0·12 + 1·13 = 163; 163 mod 23 = 2 → C
    expect(upnCheckLetter('873401224001')).toBe('C');
    expect(upnCheckLetter('000000000000')).toBe('A');
    // 1·13 = 13 → the 14th letter once I and O are skipped: P
    expect(upnCheckLetter('000000000001')).toBe('P');
    expect(isValidUpn('C873401224001')).toBe(true);
  });

  it('never produces I, O or S', () => {
    const seen = new Set<string>();
    for (let serial = 0; serial < 2000; serial++) seen.add(makeUpn('873', '4012', 19, serial % 1000)[0]!);
    expect(seen.has('I') || seen.has('O') || seen.has('S')).toBe(false);
    expect(seen.size).toBe(23);
  });

  it('rejects a wrong letter, a changed digit, bad lengths and other types', () => {
    const upn = makeUpn('873', '2041', 13, 57);
    expect(isValidUpn(upn)).toBe(true);
    const wrongLetter = `${upn[0] === 'A' ? 'B' : 'A'}${upn.slice(1)}`;
    expect(isValidUpn(wrongLetter)).toBe(false);
    const digit = upn[5] === '9' ? '0' : String(Number(upn[5]) + 1);
    expect(isValidUpn(`${upn.slice(0, 5)}${digit}${upn.slice(6)}`)).toBe(false);
    expect(isValidUpn(upn.slice(0, 12))).toBe(false);
    expect(isValidUpn(`${upn}1`)).toBe(false);
    expect(isValidUpn(upn.toLowerCase())).toBe(false);
    expect(isValidUpn(null)).toBe(false);
    expect(() => upnCheckLetter('12345')).toThrow();
  });
});

describe('ULN check digit', () => {
  it('weights digits 1–9 by 10..2 and takes 10 − (sum mod 11)', () => {
    // 1·10 + 2·9 + 3·8 + 4·7 + 5·6 + 6·5 + 7·4 + 8·3 + 9·2 = 210; 210 mod 11 = 1 → 9
    expect(ulnCheckDigit('123456789')).toBe(9);
    expect(isValidUln('1234567899')).toBe(true);
    expect(isValidUln('1234567898')).toBe(false);
    expect(isValidUln('0234567899')).toBe(false);
    expect(isValidUln('123456789')).toBe(false);
  });

  it('has no check digit when the remainder is 0', () => {
    let found = '';
    for (let n = 100_000_000; n < 100_001_000 && !found; n++) {
      let sum = 0;
      const s = String(n);
      for (let i = 0; i < 9; i++) sum += Number(s[i]) * (10 - i);
      if (sum % 11 === 0) found = s;
    }
    expect(found).not.toBe('');
    expect(ulnCheckDigit(found)).toBeNull();
    for (let d = 0; d <= 9; d++) expect(isValidUln(`${found}${d}`)).toBe(false);
  });
});
