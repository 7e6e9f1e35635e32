import { describe, expect, it } from "vitest";
import { applyFeed, type Streamed } from "./reply";
import { utf8Length } from "./text";
import type { ReplyFeed } from "./bindings/ReplyFeed";

function fresh(): Streamed {
  return { text: "", state: "streaming", error: null, tools: [] };
}

/** Cut `text` into channel messages of `size` bytes at most, never inside a character. */
function chunks(text: string, size: number): ReplyFeed[] {
  const out: ReplyFeed[] = [];
  let offset = 0;
  let piece = "";
  for (const ch of text) {
    if (utf8Length(piece + ch) > size) {
      out.push({ type: "text", offset, text: piece });
      offset += utf8Length(piece);
      piece = "";
    }
    piece += ch;
  }
  if (piece) out.push({ type: "text", offset, text: piece });
  return out;
}

describe("a reply put back together from its channel messages", () => {
  const text = "Grüße, 世界! 👋🏽 Here is `code` and more text — ünïcödé everywhere. ".repeat(20);

  it("comes out whole and in order, whatever the message sizes", () => {
    for (const size of [1, 3, 4, 7, 64, 4096]) {
      const r = fresh();
      let bytes = 0;
      for (const m of chunks(text, size)) bytes = applyFeed(r, bytes, m).bytes;
      expect(r.text).toBe(text);
      expect(bytes).toBe(utf8Length(text));
    }
  });

  it("does not show text twice when a message repeats what the window has", () => {
    const r = fresh();
    let bytes = 0;
    const ms = chunks(text, 50);
    // Every message delivered twice, and the first three again at the end.
    for (const m of [...ms.flatMap((m) => [m, m]), ...ms.slice(0, 3)]) bytes = applyFeed(r, bytes, m).bytes;
    expect(r.text).toBe(text);
  });

  it("takes only the new part of a message that overlaps, even inside multi-byte text", () => {
    const r = fresh();
    let { bytes } = applyFeed(r, 0, { type: "text", offset: 0, text: "ab😀" }); // 6 bytes
    ({ bytes } = applyFeed(r, bytes, { type: "text", offset: 2, text: "😀cd" }));
    expect(r.text).toBe("ab😀cd");
    expect(bytes).toBe(8);
  });

  it("reports a gap instead of showing text with a hole in it", () => {
    const r = fresh();
    const { bytes } = applyFeed(r, 0, { type: "text", offset: 0, text: "Hello" });
    const out = applyFeed(r, bytes, { type: "text", offset: 9, text: "world" });
    expect(out.applied).toBe("gap");
    expect(r.text).toBe("Hello");
  });

  it("settles with the state and error the engine gives, and keeps tool activity by call", () => {
    const r = fresh();
    const tool = { call_id: "c1", name: "exec", summary: "ls", status: "running", ran_by: "gatehouse", output: "" };
    applyFeed(r, 0, { type: "tool", tool });
    applyFeed(r, 0, { type: "tool", tool: { ...tool, status: "completed", output: "a.txt\n" } });
    const out = applyFeed(r, 0, { type: "settled", state: "interrupted", error: { code: "gateway.incomplete", message: "cut" } });
    expect(out.applied).toBe("settled");
    expect(r.tools).toEqual([{ ...tool, status: "completed", output: "a.txt\n" }]);
    expect(r.state).toBe("interrupted");
    expect(r.error?.code).toBe("gateway.incomplete");
  });
});
