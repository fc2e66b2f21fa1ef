/**
 * Sorts record numbers `idx[0, n)` by their keys, byte-wise: record r's key is
 * arena[keyStart[r], keyStart[r] + keyLen[r]).
 *
 * Caching multikey quicksort (Bentley–Sedgewick three-way radix quicksort on 4-byte digits, with the
 * current digit of every record kept in an array that moves along with `idx`, after Ng & Kakehi).
 * Partitioning reads only the two sequential arrays; the scattered record bytes are read once per
 * record per 4 bytes of key depth. An explicit stack, so no recursion limit.
 *
 * Keys must be prefix-free (no key is a proper prefix of another — true of the tuple encoding, whose
 * elements are self-delimiting). Keys that are entirely equal end up adjacent; the caller reports them
 * as duplicates.
 */
export function sortByKey(
  arena: Uint8Array,
  keyStart: Int32Array,
  keyLen: Int32Array,
  idx: Int32Array,
  n: number,
): void {
  const cache = new Uint32Array(n);
  for (let i = 0; i < n; i++) cache[i] = digitAt(arena, keyStart, keyLen, idx[i]!, 0);
  const stack: number[] = [0, n, 0];
  while (stack.length > 0) {
    let d = stack.pop()!;
    let hi = stack.pop()!;
    let lo = stack.pop()!;
    while (hi - lo > 16) {
      const a = cache[lo]!;
      const b = cache[lo + ((hi - lo) >> 1)]!;
      const c = cache[hi - 1]!;
      const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
      let lt = lo;
      let gt = hi - 1;
      let i = lo;
      while (i <= gt) {
        const v = cache[i]!;
        if (v < pivot) {
          const r = idx[i]!;
          idx[i] = idx[lt]!;
          cache[i] = cache[lt]!;
          idx[lt] = r;
          cache[lt] = v;
          lt++;
          i++;
        } else if (v > pivot) {
          const r = idx[i]!;
          idx[i] = idx[gt]!;
          cache[i] = cache[gt]!;
          idx[gt] = r;
          cache[gt] = v;
          gt--;
        } else {
          i++;
        }
      }
      if (lt - lo > 1) stack.push(lo, lt, d);
      if (hi - gt - 1 > 1) stack.push(gt + 1, hi, d);
      // [lt, gt] share the digit. If the key ended within it, they are all the same key (prefix-free).
      if (keyLen[idx[lt]!]! <= d + 4) {
        lo = hi;
        break;
      }
      d += 4;
      for (let j = lt; j <= gt; j++) cache[j] = digitAt(arena, keyStart, keyLen, idx[j]!, d);
      lo = lt;
      hi = gt + 1;
    }
    if (hi - lo > 1) insertionSort(arena, keyStart, keyLen, idx, cache, lo, hi, d);
  }
}

/** Key bytes [d, d + 4) of record r as a big-endian unsigned number (0 past the end of the key). */
function digitAt(arena: Uint8Array, keyStart: Int32Array, keyLen: Int32Array, r: number, d: number): number {
  const s = keyStart[r]! + d;
  const rest = keyLen[r]! - d;
  if (rest >= 4)
    return ((arena[s]! << 24) | (arena[s + 1]! << 16) | (arena[s + 2]! << 8) | arena[s + 3]!) >>> 0;
  let v = 0;
  for (let j = 0; j < 4; j++) v = v * 256 + (j < rest ? arena[s + j]! : 0);
  return v;
}

/** Compares keys of records r and s from depth d (bytes before d are known to be equal). */
function compareFrom(
  arena: Uint8Array,
  keyStart: Int32Array,
  keyLen: Int32Array,
  r: number,
  s: number,
  d: number,
): number {
  const lr = keyLen[r]!;
  const ls = keyLen[s]!;
  const n = Math.min(lr, ls);
  const a = keyStart[r]!;
  const b = keyStart[s]!;
  for (let i = d; i < n; i++) {
    const x = arena[a + i]!;
    const y = arena[b + i]!;
    if (x !== y) return x - y;
  }
  return lr - ls;
}

function insertionSort(
  arena: Uint8Array,
  keyStart: Int32Array,
  keyLen: Int32Array,
  idx: Int32Array,
  cache: Uint32Array,
  lo: number,
  hi: number,
  d: number,
): void {
  for (let i = lo + 1; i < hi; i++) {
    const r = idx[i]!;
    const v = cache[i]!;
    let j = i - 1;
    while (j >= lo) {
      const w = cache[j]!;
      if (w < v || (w === v && compareFrom(arena, keyStart, keyLen, idx[j]!, r, d) <= 0)) break;
      idx[j + 1] = idx[j]!;
      cache[j + 1] = w;
      j--;
    }
    idx[j + 1] = r;
    cache[j + 1] = v;
  }
}
