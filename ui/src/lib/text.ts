// The engine counts text in UTF-8 bytes (reply offsets, search highlights); the webview's
// strings count UTF-16 code units. These convert between the two.

/** The length of `s` in UTF-8 bytes, without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4; // a surrogate pair: one 4-byte character
      i++;
    } else n += 3;
  }
  return n;
}

/** The UTF-16 index in `s` where its UTF-8 byte `byte` falls (clamped to the string). */
export function byteToIndex(s: string, byte: number): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (n >= byte) return i;
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return s.length;
}

/** `snippet` cut into plain and highlighted parts, from byte ranges `[start, end)`. */
export function highlightParts(snippet: string, ranges: Array<[number, number]>): Array<{ text: string; hit: boolean }> {
  const parts: Array<{ text: string; hit: boolean }> = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const s = byteToIndex(snippet, start);
    const e = byteToIndex(snippet, end);
    if (s < at || e <= s) continue;
    if (s > at) parts.push({ text: snippet.slice(at, s), hit: false });
    parts.push({ text: snippet.slice(s, e), hit: true });
    at = e;
  }
  if (at < snippet.length) parts.push({ text: snippet.slice(at), hit: false });
  return parts;
}
