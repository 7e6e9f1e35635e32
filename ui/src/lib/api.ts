// The one way the UI reaches the app: every command, event and stream, typed by the
// bindings generated from the Rust types (ui/src/lib/bindings, checked in CI).
// An error is always an ErrorBody `{code, message}`: branch on `code`, show `message`.

import { invoke, Channel } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { ErrorBody } from "./bindings/ErrorBody";
import type { ConversationPage } from "./bindings/ConversationPage";
import type { MessagePage } from "./bindings/MessagePage";
import type { Message } from "./bindings/Message";
import type { ReplyFeed } from "./bindings/ReplyFeed";
import type { SearchHit } from "./bindings/SearchHit";
import type { Sent } from "./bindings/Sent";
import type { Transfer } from "./bindings/Transfer";
import type { Route } from "./bindings/Route";
import type { At } from "./bindings/At";
import type { Profile } from "./bindings/Profile";
import type { ModelInfo } from "./bindings/ModelInfo";
import type { FetchProgress } from "./bindings/FetchProgress";
import type { Settings } from "./bindings/Settings";
import type { SettingsChange } from "./bindings/SettingsChange";
import type { PoolStatus } from "./bindings/PoolStatus";
import type { NewGateway } from "./bindings/NewGateway";
import type { ConversationEvent } from "./bindings/ConversationEvent";
import type { JobNews } from "./bindings/JobNews";
import type { JobRow } from "./bindings/JobRow";
import type { JobRequest } from "./bindings/JobRequest";
import type { ApprovalEvent } from "./bindings/ApprovalEvent";
import type { ApprovalRequest } from "./bindings/ApprovalRequest";
import type { Answer } from "./bindings/Answer";
import type { Rule } from "./bindings/Rule";
import type { NewExecRule } from "./bindings/NewExecRule";
import type { AuditEntry } from "./bindings/AuditEntry";
import type { JobState } from "./bindings/JobState";
import type { OutputLine } from "./bindings/OutputLine";
import type { UpdateStatus } from "./bindings/UpdateStatus";

/** Any failure as the engine's error shape; a failure of the IPC itself gets `app.ipc`. */
export function asError(e: unknown): ErrorBody {
  if (e && typeof e === "object" && "code" in e && "message" in e) return e as ErrorBody;
  return { code: "app.ipc", message: `Gatehouse could not do that: ${String(e)}` };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asError(e);
  }
}

function channel<T>(on: (m: T) => void): Channel<T> {
  const c = new Channel<T>();
  c.onmessage = on;
  return c;
}

export const api = {
  /** The window has painted: its first frame at `at`, the mounted app's at `ready` (wall-clock ms). */
  painted: (at: number, ready: number) => call<void>("painted", { at, ready }),
  openLink: (url: string) => call<void>("open_link", { url }),

  conversations: (after: string | null, limit: number) => call<ConversationPage>("conversations", { after, limit }),
  messages: (conversationId: number, at: At, limit: number) => call<MessagePage>("messages", { conversationId, at, limit }),
  message: (id: number) => call<Message>("message", { id }),
  send: (text: string, conversationId: number | null, route: Route, on: (f: ReplyFeed) => void) =>
    call<Sent>("send", { text, conversationId, route, channel: channel(on) }),
  regenerate: (messageId: number, route: Route, on: (f: ReplyFeed) => void) =>
    call<Sent>("regenerate", { messageId, route, channel: channel(on) }),
  editMessage: (messageId: number, text: string, route: Route, on: (f: ReplyFeed) => void) =>
    call<Sent>("edit_message", { messageId, text, route, channel: channel(on) }),
  continueReply: (messageId: number, route: Route, on: (f: ReplyFeed) => void) =>
    call<Sent>("continue_reply", { messageId, route, channel: channel(on) }),
  watchReply: (messageId: number, from: number, on: (f: ReplyFeed) => void) =>
    call<void>("watch_reply", { messageId, from, channel: channel(on) }),
  stopReply: (messageId: number) => call<boolean>("stop_reply", { messageId }),
  showVersion: (messageId: number) => call<void>("show_version", { messageId }),
  renameConversation: (id: number, title: string) => call<void>("rename_conversation", { id, title }),
  pinConversation: (id: number, pinned: boolean) => call<void>("pin_conversation", { id, pinned }),
  deleteConversation: (id: number) => call<void>("delete_conversation", { id }),
  search: (query: string, limit: number) => call<SearchHit[]>("search", { query, limit }),
  /** Export conversations (all when `ids` is empty) to a file picked in a save dialog; null if none was picked. */
  exportConversations: (ids: number[]) => call<Transfer | null>("export_conversations", { ids }),
  /** Import a JSON export picked in an open dialog, as new conversations; null if none was picked. */
  importConversations: () => call<Transfer | null>("import_conversations"),

  gateways: () => call<Profile[]>("gateways"),
  addGateway: (gateway: NewGateway) => call<void>("add_gateway", { gateway }),
  removeGateway: (name: string) => call<void>("remove_gateway", { name }),
  setDefaultGateway: (name: string) => call<void>("set_default_gateway", { name }),
  checkGateway: (name: string) => call<string>("check_gateway", { name }),
  models: () => call<ModelInfo[]>("models"),
  addModel: (path: string, name: string | null) => call<ModelInfo>("add_model", { path, name }),
  setDefaultModel: (name: string) => call<void>("set_default_model", { name }),
  removeModel: (name: string) => call<void>("remove_model", { name }),
  fetchModel: (on: (p: FetchProgress) => void) => call<void>("fetch_model", { progress: channel(on) }),
  settings: () => call<Settings>("settings"),
  changeSettings: (change: SettingsChange) => call<Settings>("change_settings", { change }),
  poolStatus: () => call<PoolStatus>("pool_status"),
  jobs: (state: JobState | null, limit: number) => call<JobRow[]>("jobs", { state, limit }),
  job: (id: number) => call<JobRow>("job", { id }),
  /** Queue a prompt or a command; a command the policy denies is refused now. Returns its id. */
  submitJob: (job: JobRequest, priority: number) => call<number>("submit_job", { job, priority }),
  /** True if the job ended at once (it was queued); false if its pool was asked to stop it. */
  cancelJob: (id: number) => call<boolean>("cancel_job", { id }),
  retryJob: (id: number) => call<void>("retry_job", { id }),
  pausePool: (paused: boolean) => call<PoolStatus>("pause_pool", { paused }),
  /** Job `id`'s output after line `after`: stored lines, then new ones until it has finished. */
  jobOutput: (id: number, after: number, on: (lines: OutputLine[]) => void) => call<void>("job_output", { id, after, channel: channel(on) }),

  approvals: () => call<ApprovalRequest[]>("approvals"),
  answerApproval: (id: number, answer: Answer) => call<ApprovalRequest>("answer_approval", { id, answer }),
  execRules: () => call<Rule[]>("exec_rules"),
  addExecRule: (rule: NewExecRule) => call<number>("add_exec_rule", { rule }),
  removeExecRule: (id: number) => call<void>("remove_exec_rule", { id }),
  workspaces: () => call<string[]>("workspaces"),
  addWorkspace: (dir: string) => call<string>("add_workspace", { dir }),
  removeWorkspace: (dir: string) => call<void>("remove_workspace", { dir }),
  execAudit: (limit: number) => call<AuditEntry[]>("exec_audit", { limit }),
  /** Whether this build has an update feed, and what the last check found (no network). */
  updateStatus: () => call<UpdateStatus>("update_status"),
  /** Ask the release feed for a newer version. */
  checkUpdate: () => call<UpdateStatus>("check_update"),
  /** Download the update found, check its signature, install it and restart. */
  installUpdate: () => call<void>("install_update"),
  /** Quit after the person chose: wait for the jobs running here, or re-queue them now. */
  quit: (wait: boolean) => call<void>("quit", { wait }),

  onConversation: (f: (e: ConversationEvent) => void): Promise<UnlistenFn> => listen<ConversationEvent>("conversation", (e) => f(e.payload)),
  onJob: (f: (e: JobNews) => void): Promise<UnlistenFn> => listen<JobNews>("job", (e) => f(e.payload)),
  onApproval: (f: (e: ApprovalEvent) => void): Promise<UnlistenFn> => listen<ApprovalEvent>("approval", (e) => f(e.payload)),
  /** The tray asked this window to show a job. */
  onOpenJob: (f: (id: number) => void): Promise<UnlistenFn> => listen<number>("open-job", (e) => f(e.payload)),
  /** The check at start found a newer version. */
  onUpdate: (f: (s: UpdateStatus) => void): Promise<UnlistenFn> => listen<UpdateStatus>("update", (e) => f(e.payload)),
  /** The tray's Quit, while jobs run here: how many. */
  onQuitAsked: (f: (running: number) => void): Promise<UnlistenFn> => listen<number>("quit-asked", (e) => f(e.payload)),
};
