// A reply's text as it streams in: the channel's messages put back together by their byte
// offsets, so a message that repeats text the window has already is not shown twice, and one
// that would leave a hole is caught (the window then reloads the message from the store).

import type { ReplyFeed } from "./bindings/ReplyFeed";
import type { MessageState } from "./bindings/MessageState";
import type { JobError } from "./bindings/JobError";
import type { ToolActivity } from "./bindings/ToolActivity";
import { byteToIndex, utf8Length } from "./text";

export interface Streamed {
  text: string;
  state: MessageState;
  error: JobError | null;
  tools: ToolActivity[];
}

/** What applying a message did: `gap` means text is missing and the message must be reloaded. */
export type Applied = "ok" | "gap" | "settled";

/** Apply one channel message to `into` (whose `text` has `bytes` UTF-8 bytes); returns the new byte count and what happened. */
export function applyFeed(into: Streamed, bytes: number, feed: ReplyFeed): { bytes: number; applied: Applied } {
  switch (feed.type) {
    case "text": {
      const end = feed.offset + utf8Length(feed.text);
      if (feed.offset > bytes) return { bytes, applied: "gap" };
      if (end <= bytes) return { bytes, applied: "ok" };
      const skip = bytes - feed.offset;
      const fresh = skip === 0 ? feed.text : feed.text.slice(byteToIndex(feed.text, skip));
      into.text += fresh;
      return { bytes: end, applied: "ok" };
    }
    case "tool": {
      const i = into.tools.findIndex((t) => t.call_id === feed.tool.call_id);
      if (i >= 0) into.tools[i] = feed.tool;
      else into.tools.push(feed.tool);
      return { bytes, applied: "ok" };
    }
    case "settled":
      into.state = feed.state;
      into.error = feed.error;
      return { bytes, applied: "settled" };
  }
}
