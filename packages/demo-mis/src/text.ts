/** ASCII folding for logins, staff codes and email local parts. */
const SPECIAL: Readonly<Record<string, string>> = {
  ł: 'l',
  Ł: 'L',
  ø: 'o',
  Ø: 'O',
  ı: 'i',
  ß: 'ss',
  đ: 'd',
  Đ: 'D',
  æ: 'ae',
};

export function asciiFold(s: string): string {
  return s
    .replace(/[łŁøØıßđĐæ]/g, (ch) => SPECIAL[ch] ?? ch)
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '');
}

/** Lower-case letters only: "O'Brien" → "obrien", "Nguyễn" → "nguyen". */
export function slug(s: string): string {
  return asciiFold(s)
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}
