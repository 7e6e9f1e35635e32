// The chat window's state, with the IPC replaced by a MOCK of `api` (these tests are about the
// window's bookkeeping; the real IPC is exercised by the end-to-end tests).
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Conversation } from "./bindings/Conversation";
import type { Message } from "./bindings/Message";
import type { ReplyFeed } from "./bindings/ReplyFeed";

const channels = new Map<number, (f: ReplyFeed) => void>();
const pages = new Map<number, Message[]>();
let sendHook: ((on: (f: ReplyFeed) => void) => void) | null = null;

vi.mock("./api", () => ({
  asError: (e: unknown) => e,
  api: {
    onConversation: async () => () => {},
    conversations: async () => ({ conversations: [], next: null }),
    gateways: async () => [],
    settings: async () => ({ chat_tools: false }),
    messages: async (id: number) => ({ messages: pages.get(id) ?? [], more_before: false, more_after: false }),
    watchReply: async (id: number, _from: number, on: (f: ReplyFeed) => void) => void channels.set(id, on),
    send: async (_t: string, _c: number | null, _r: unknown, on: (f: ReplyFeed) => void) => {
      sendHook?.(on);
      return { conversation_id: 1, message_id: 11 };
    },
    message: async () => { throw new Error("not used"); },
  },
}));

const { Chat, sortConversations } = await import("./chat.svelte");

function conv(id: number, updated: string, pinned = false, branch = 0): Conversation {
  return { id, title: `c${id}`, gateway: null, model: null, messages: 0, pinned, branch, remote_gateway: null, remote_session: null, created_at: updated, updated_at: updated };
}

function msg(id: number, role: string, text: string, state: Message["state"] = "complete"): Message {
  // As the engine sends it: no `tools` key when none ran.
  return { id, parent_id: null, role, text, state, error: null, versions: [], created_at: "2026-01-01T00:00:00Z" };
}

/** The window's display frames, run by the test when it "paints". */
const frames: Array<() => void> = [];
const paint = () => frames.splice(0).forEach((f) => f());
const newChat = () => new Chat((f) => void frames.push(f));

beforeEach(() => {
  frames.length = 0;
  channels.clear();
  pages.clear();
  sendHook = null;
});

describe("the conversation list", () => {
  it("keeps pinned conversations first, then the most recently active", () => {
    const list = sortConversations([conv(1, "2026-01-01T10:00:00Z"), conv(2, "2026-01-02T10:00:00Z"), conv(3, "2025-01-01T10:00:00Z", true)]);
    expect(list.map((c) => c.id)).toEqual([3, 2, 1]);
  });

  it("follows news from any process: created, changed to the top, deleted", async () => {
    const chat = newChat();
    chat.onEvent({ type: "created", conversation: conv(1, "2026-01-01T10:00:00Z") });
    chat.onEvent({ type: "created", conversation: conv(2, "2026-01-02T10:00:00Z") });
    chat.onEvent({ type: "changed", conversation: conv(1, "2026-01-03T10:00:00Z") });
    expect(chat.conversations.map((c) => c.id)).toEqual([1, 2]);
    await chat.open(1);
    chat.onEvent({ type: "deleted", id: 1 });
    expect(chat.conversations.map((c) => c.id)).toEqual([2]);
    expect(chat.selected).toBeNull();
  });
});

describe("a streaming reply", () => {
  it("keeps streaming while another conversation is shown, and shows where it is on coming back", async () => {
    const chat = newChat();
    pages.set(1, [msg(10, "user", "hi"), msg(11, "assistant", "Hel", "streaming")]);
    pages.set(2, [msg(20, "user", "other")]);
    await chat.open(1);
    const feed = channels.get(11)!;
    feed({ type: "text", offset: 3, text: "lo" });
    await chat.open(2);
    feed({ type: "text", offset: 5, text: ", world" });
    // The store still has the old text; the window shows the live one.
    await chat.open(1);
    paint();
    expect(chat.shown(chat.messages[1]).text).toBe("Hello, world");
    feed({ type: "settled", state: "complete", error: null });
    expect(chat.shown(chat.messages[1]).state).toBe("complete");
    expect(chat.streaming).toBeUndefined();
  });

  it("keeps what arrives on the channel before the send command has returned", async () => {
    const chat = newChat();
    pages.set(1, [msg(10, "user", "hi"), msg(11, "assistant", "", "streaming")]);
    sendHook = (on) => on({ type: "text", offset: 0, text: "Early " });
    await chat.send("hi");
    expect(chat.selected).toBe(1);
    paint();
    expect(chat.live[11].text).toBe("Early ");
  });

  it("shows what came within a frame at once, in order, nothing lost or repeated", async () => {
    const chat = newChat();
    pages.set(1, [msg(10, "user", "hi"), msg(11, "assistant", "", "streaming")]);
    await chat.open(1);
    const feed = channels.get(11)!;
    feed({ type: "text", offset: 0, text: "One " });
    feed({ type: "text", offset: 4, text: "two " });
    feed({ type: "text", offset: 4, text: "two three " }); // partly repeated: the new part only
    expect(chat.live[11].text).toBe(""); // nothing rendered between frames
    expect(frames).toHaveLength(1); // one frame asked for, however many messages came
    paint();
    expect(chat.live[11].text).toBe("One two three ");
    feed({ type: "text", offset: 14, text: "four." });
    feed({ type: "settled", state: "complete", error: null });
    // The end shows at once, after the text that came before it.
    expect(chat.shown(chat.messages[1])).toMatchObject({ text: "One two three four.", state: "complete" });
    expect(chat.streamingId).toBeNull();
  });
});
