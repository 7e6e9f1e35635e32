import { describe, expect, it } from "vitest";
import { byteToIndex, highlightParts, utf8Length } from "./text";

describe("UTF-8 byte offsets in UTF-16 strings", () => {
  it("counts bytes as the engine does", () => {
    for (const s of ["", "abc", "é", "世界", "👋🏽", "a😀b", "mixed: ü 世 😀"]) {
      expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
    }
  });

  it("maps a byte offset to the string index where it falls", () => {
    const s = "aé世😀z";
    // bytes: a=0, é=1..2, 世=3..5, 😀=6..9, z=10
    expect(byteToIndex(s, 0)).toBe(0);
    expect(byteToIndex(s, 1)).toBe(1);
    expect(byteToIndex(s, 3)).toBe(2);
    expect(byteToIndex(s, 6)).toBe(3);
    expect(byteToIndex(s, 10)).toBe(5);
    expect(byteToIndex(s, 99)).toBe(s.length);
  });

  it("cuts a search snippet into plain and highlighted parts from the engine's byte ranges", () => {
    const snippet = "Die Straße nach München ist lang";
    const enc = new TextEncoder();
    const start = enc.encode("Die Straße nach ").length;
    const end = start + enc.encode("München").length;
    const parts = highlightParts(snippet, [[start, end]]);
    expect(parts).toEqual([
      { text: "Die Straße nach ", hit: false },
      { text: "München", hit: true },
      { text: " ist lang", hit: false },
    ]);
  });
});
