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

/** The part of a text message that is new to a reply holding `bytes` bytes, and the reply's
 * length after it; null when the message starts past the end (text went missing). */
export function freshText(bytes: number, feed: { offset: number; text: string }): { fresh: string; bytes: number } | null {
  const end = feed.offset + utf8Length(feed.text);
  if (feed.offset > bytes) return null;
  if (end <= bytes) return { fresh: "", bytes };
  const skip = bytes - feed.offset;
  return { fresh: skip === 0 ? feed.text : feed.text.slice(byteToIndex(feed.text, skip)), bytes: end };
}

/** Apply one channel message to `into` (whose `text` has `bytes` UTF-8 bytes); returns the new byte count and what happened. */
export function applyFeed(into: Streamed, bytes: number, feed: ReplyFeed): { bytes: number; applied: Applied } {
  switch (feed.type) {
    case "text": {
      const got = freshText(bytes, feed);
      if (!got) return { bytes, applied: "gap" };
      into.text += got.fresh;
      return { bytes: got.bytes, applied: "ok" };
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
