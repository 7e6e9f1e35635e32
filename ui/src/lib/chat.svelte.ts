// The chat window's state: the conversation list, the conversation shown, and the replies
// streaming in — in this window or anywhere else on the same database. A reply keeps
// streaming into `live` when another conversation is shown, so coming back shows it as it is.

import { api, asError } from "./api";
import { applyFeed, freshText, type Streamed } from "./reply";
import { utf8Length } from "./text";
import type { Conversation } from "./bindings/Conversation";
import type { ConversationEvent } from "./bindings/ConversationEvent";
import type { ErrorBody } from "./bindings/ErrorBody";
import type { Message } from "./bindings/Message";
import type { Profile } from "./bindings/Profile";
import type { ReplyFeed } from "./bindings/ReplyFeed";
import type { Route } from "./bindings/Route";
import type { SearchHit } from "./bindings/SearchHit";

/** Messages per page: a screenful and more; older ones load on scrolling up. */
export const PAGE = 60;

export interface Live extends Streamed {
  /** UTF-8 bytes of `text`: where the next channel message must start. */
  bytes: number;
  /** Bumped when the reply is followed anew; older channels' messages are then ignored. */
  generation: number;
}

export function sortConversations(list: Conversation[]): Conversation[] {
  return list.sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.updated_at.localeCompare(a.updated_at) || b.id - a.id);
}

/** Calls its argument before the next paint: the window's display frame. */
export type Frame = (f: () => void) => void;

const nextFrame: Frame = (f) => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => f());
  else setTimeout(f, 16);
};

export class Chat {
  conversations = $state<Conversation[]>([]);
  /** The conversation shown; null = a new one, not started yet. */
  selected = $state<number | null>(null);
  messages = $state<Message[]>([]);
  moreBefore = $state(false);
  /** Replies followed through a channel, by message id. */
  live = $state<Record<number, Live>>({});
  /** A failed command, shown above the message box. */
  error = $state<ErrorBody | null>(null);
  /** What the last export or import did, in a sentence (under the conversation list). */
  notice = $state<string | null>(null);
  gateways = $state<Profile[]>([]);
  /** The gateway and model the next message goes to. */
  route = $state<Route>({});
  /** Offer the model the exec tool (a setting of the data directory, shared with the CLI). */
  tools = $state(false);
  /** A message to bring into view (a search hit). */
  focus = $state<number | null>(null);
  searchQuery = $state("");
  hits = $state<SearchHit[]>([]);
  searchError = $state<ErrorBody | null>(null);
  /** Counts loads so a slow one that lost the race is dropped. */
  private load = 0;
  private branch = new Map<number, number>();
  /** Text that came in since the last frame, by message id: shown all at once at the next
   * frame. The channel's messages arrive as separate tasks; applied one by one, each would
   * render the reply again, and a window that falls behind (a busy machine, 1,000 tokens/s)
   * would then fall further behind. Applied per frame, it renders once whatever came. */
  private drafts = new Map<number, string>();
  private drafting = false;

  /** `frame` schedules work for the next display frame (tests pass their own). */
  constructor(private frame: Frame = nextFrame) {}

  /** The reply streaming in the conversation shown, if one is. Read from states only, so it
   * does not change (nor what depends on it) with each token. */
  readonly streamingId = $derived.by(() => {
    for (const m of this.messages) {
      const l = this.live[m.id];
      if ((l ? l.state : m.state) === "streaming") return m.id;
    }
    return null;
  });

  get current(): Conversation | undefined {
    return this.conversations.find((c) => c.id === this.selected);
  }

  /** The message as shown: its live text and tool calls while it streams (a reply followed
   * from the store starts from its stored calls, see `follow`). */
  shown(m: Message): Message {
    const l = this.live[m.id];
    return l ? { ...m, text: l.text, state: l.state, error: l.error, tools: l.tools } : m;
  }

  get streaming(): Message | undefined {
    const m = this.messages.find((m) => m.id === this.streamingId);
    return m && this.shown(m);
  }

  async start(): Promise<void> {
    await api.onConversation((e) => this.onEvent(e));
    await Promise.all([this.loadConversations(), this.loadGateways(), this.loadTools()]);
  }

  private async loadTools(): Promise<void> {
    try {
      this.tools = (await api.settings()).chat_tools;
    } catch (e) {
      this.error = asError(e);
    }
  }

  async loadGateways(): Promise<void> {
    try {
      this.gateways = await api.gateways();
    } catch (e) {
      this.error = asError(e);
    }
  }

  async loadConversations(): Promise<void> {
    try {
      const page = await api.conversations(null, 200);
      this.conversations = page.conversations;
    } catch (e) {
      this.error = asError(e);
    }
  }

  /** Where the next turn goes, and whether the model may run commands. */
  private routed(): Route {
    return { ...this.route, tools: this.tools };
  }

  async setTools(on: boolean): Promise<void> {
    this.tools = on;
    try {
      this.tools = (await api.changeSettings({ chat_tools: on })).chat_tools;
    } catch (e) {
      this.tools = !on;
      this.error = asError(e);
    }
  }

  newChat(): void {
    this.selected = null;
    this.messages = [];
    this.moreBefore = false;
    this.focus = null;
    this.error = null;
    this.route = {};
  }

  async open(id: number, around: number | null = null): Promise<void> {
    if (this.selected !== id) {
      this.route = {};
      this.error = null;
    }
    this.selected = id;
    this.focus = around;
    await this.reload(around);
  }

  /** Load the conversation shown again (its newest page, or around a message). */
  async reload(around: number | null = null): Promise<void> {
    const id = this.selected;
    if (id === null) return;
    const ticket = ++this.load;
    try {
      const page = await api.messages(id, around === null ? { at: "latest" } : { at: "around", id: around }, PAGE);
      if (ticket !== this.load) return;
      this.messages = page.messages;
      this.moreBefore = page.more_before;
      const c = this.current;
      if (c) this.branch.set(id, c.branch);
      for (const m of page.messages) if (m.state === "streaming") this.follow(m);
    } catch (e) {
      if (ticket === this.load) this.error = asError(e);
    }
  }

  /** Older messages, put before the ones shown (scrolling up). */
  async loadOlder(): Promise<boolean> {
    const id = this.selected;
    const first = this.messages[0];
    if (id === null || !first || !this.moreBefore) return false;
    try {
      const page = await api.messages(id, { at: "before", id: first.id }, PAGE);
      if (this.selected !== id) return false;
      this.messages = [...page.messages, ...this.messages];
      this.moreBefore = page.more_before;
      return page.messages.length > 0;
    } catch (e) {
      this.error = asError(e);
      return false;
    }
  }

  /** Follow a streaming reply from what the window has of it. */
  follow(m: Message): void {
    const have = this.live[m.id];
    if (have && have.state === "streaming") return;
    const generation = (have?.generation ?? 0) + 1;
    this.drafts.delete(m.id);
    this.live[m.id] = { text: m.text, bytes: utf8Length(m.text), state: m.state, error: m.error, tools: [...(m.tools ?? [])], generation };
    api.watchReply(m.id, this.live[m.id].bytes, (f) => this.onFeed(m.id, generation, f)).catch((e) => (this.error = asError(e)));
  }

  /** A reply begun by this window: followed from its first byte. */
  private begun(id: number): { generation: number; on: (f: ReplyFeed) => void } {
    const generation = (this.live[id]?.generation ?? 0) + 1;
    this.drafts.delete(id);
    this.live[id] = { text: "", bytes: 0, state: "streaming", error: null, tools: [], generation };
    return { generation, on: (f) => this.onFeed(id, generation, f) };
  }

  private onFeed(id: number, generation: number, f: ReplyFeed): void {
    const l = this.live[id];
    if (!l || l.generation !== generation) return;
    if (f.type === "text") {
      const got = freshText(l.bytes, f);
      if (!got) {
        // Text went missing on the way: take the message from the store and follow it again.
        api.message(id).then((m) => {
          l.state = "complete"; // let follow() start anew
          this.follow(m);
        });
        return;
      }
      l.bytes = got.bytes;
      if (got.fresh) {
        this.drafts.set(id, (this.drafts.get(id) ?? "") + got.fresh);
        if (!this.drafting) {
          this.drafting = true;
          this.frame(() => this.flush());
        }
      }
      return;
    }
    // A tool or the end: after the text that came before it.
    this.flush();
    l.bytes = applyFeed(l, l.bytes, f).bytes;
  }

  /** Show the text that came in since the last frame. */
  flush(): void {
    this.drafting = false;
    for (const [id, text] of this.drafts) {
      const l = this.live[id];
      if (l) l.text += text;
    }
    this.drafts.clear();
  }

  /** Run a turn-starting command for the conversation shown. */
  private async turn(start: (on: (f: ReplyFeed) => void) => Promise<{ conversation_id: number; message_id: number }>, id?: number): Promise<boolean> {
    this.error = null;
    // The reply's id is known only once the command returns; messages that arrive before are kept.
    const early: ReplyFeed[] = [];
    let route: ((f: ReplyFeed) => void) | null = null;
    try {
      const sent = await start((f) => (route ? route(f) : early.push(f)));
      const { on } = this.begun(sent.message_id);
      route = on;
      early.forEach(on);
      if (this.selected !== sent.conversation_id) {
        this.selected = sent.conversation_id;
      }
      await this.reload();
      return true;
    } catch (e) {
      this.error = asError(e);
      if (id !== undefined) await this.reload();
      return false;
    }
  }

  send(text: string): Promise<boolean> {
    return this.turn((on) => api.send(text, this.selected, this.routed(), on));
  }

  regenerate(replyId: number): Promise<boolean> {
    return this.turn((on) => api.regenerate(replyId, this.routed(), on), replyId);
  }

  edit(messageId: number, text: string): Promise<boolean> {
    return this.turn((on) => api.editMessage(messageId, text, this.routed(), on), messageId);
  }

  continueReply(replyId: number): Promise<boolean> {
    return this.turn((on) => api.continueReply(replyId, this.routed(), on), replyId);
  }

  async stop(): Promise<void> {
    const m = this.streaming;
    if (!m) return;
    try {
      await api.stopReply(m.id);
    } catch (e) {
      this.error = asError(e);
    }
  }

  async showVersion(id: number): Promise<void> {
    try {
      await api.showVersion(id);
      await this.reload();
    } catch (e) {
      this.error = asError(e);
    }
  }

  async rename(id: number, title: string): Promise<void> {
    try {
      await api.renameConversation(id, title);
    } catch (e) {
      this.error = asError(e);
    }
  }

  async remove(id: number): Promise<void> {
    try {
      await api.deleteConversation(id);
      this.conversations = this.conversations.filter((c) => c.id !== id);
      if (this.selected === id) this.newChat();
    } catch (e) {
      this.error = asError(e);
    }
  }

  /** Export conversations (every one when `ids` is empty) to a file the person picks. */
  async exportConversations(ids: number[]): Promise<void> {
    try {
      const done = await api.exportConversations(ids);
      if (done) this.notice = `Exported ${plural(done.count, "conversation")} to ${done.path}`;
    } catch (e) {
      this.error = asError(e);
    }
  }

  /** Import an export the person picks; the new conversations arrive through the feed. */
  async importConversations(): Promise<void> {
    try {
      const done = await api.importConversations();
      if (done) this.notice = `Imported ${plural(done.count, "conversation")} from ${done.path}`;
    } catch (e) {
      this.error = asError(e);
    }
  }

  async search(query: string): Promise<void> {
    this.searchQuery = query;
    if (!query.trim()) {
      this.hits = [];
      this.searchError = null;
      return;
    }
    try {
      const hits = await api.search(query, 50);
      if (this.searchQuery === query) {
        this.hits = hits;
        this.searchError = null;
      }
    } catch (e) {
      if (this.searchQuery === query) {
        this.hits = [];
        this.searchError = asError(e);
      }
    }
  }

  /** News from the engine: this window's own doings and other processes' alike. */
  onEvent(e: ConversationEvent): void {
    switch (e.type) {
      case "created":
      case "changed": {
        const c = e.conversation;
        const i = this.conversations.findIndex((x) => x.id === c.id);
        if (i >= 0) this.conversations[i] = c;
        else this.conversations.push(c);
        sortConversations(this.conversations);
        if (c.id === this.selected && this.branch.has(c.id) && this.branch.get(c.id) !== c.branch) {
          this.branch.set(c.id, c.branch);
          void this.reload();
        }
        break;
      }
      case "deleted":
        this.conversations = this.conversations.filter((c) => c.id !== e.id);
        if (this.selected === e.id) this.newChat();
        break;
      case "message":
        if (e.conversation_id === this.selected && !this.messages.some((m) => m.id === e.message.id)) {
          // A message said elsewhere (the CLI): shown, and followed if it is a reply streaming.
          void this.reload();
        }
        break;
      case "settled": {
        const i = this.messages.findIndex((m) => m.id === e.message.id);
        if (i >= 0) this.messages[i] = e.message;
        const l = this.live[e.message.id];
        if (l && l.state !== "streaming") delete this.live[e.message.id];
        break;
      }
      case "resync":
        void this.loadConversations();
        void this.reload();
        break;
    }
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
