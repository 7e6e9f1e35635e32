//! Chat commands: each validates, calls one engine method and maps its error. Replies stream
//! through a channel per reply ([`crate::stream`]); conversation news comes as the
//! `conversation` event ([`crate::events`]).

use std::sync::Arc;

use gatehouse_engine::exec::approval::Elsewhere;
use gatehouse_engine::{Approver, ConversationPage, Message, MessagePage, MessagesAt, ReplyFeed, SearchHit, SendOptions};
use gatehouse_engine::chat::export;
use tauri::ipc::Channel;
use tauri::{Runtime, State, Window};
use tauri_plugin_dialog::{DialogExt, FilePath};
use tokio_util::sync::CancellationToken;

use crate::error::{Failure, Result};
use crate::state::Core;
use crate::stream;

/// A turn started: where its reply is. The reply's text comes on the channel passed in.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Sent {
    /// The conversation (new if the message started one).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub conversation_id: i64,
    /// The reply being streamed.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub message_id: i64,
}

/// Which gateway and model a turn asks; `None` = the conversation's, else the default.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Route {
    /// A gateway profile's name.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub gateway: Option<String>,
    /// A model the gateway knows.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model: Option<String>,
    /// Offer the model the exec tool. Its `ask` commands wait for the approval dialog (or any
    /// other process's answer) until the request expires.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tools: Option<bool>,
}

impl Route {
    fn options(self, conversation: Option<i64>) -> SendOptions {
        let exec_tool = self.tools.unwrap_or(false).then(|| Arc::new(Elsewhere) as Arc<dyn Approver>);
        SendOptions { conversation, gateway: self.gateway, model: self.model, exec_tool, ..SendOptions::default() }
    }
}

/// Messages to follow a page with, the page's newest or around one message.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(tag = "at", content = "id", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum At {
    /// The newest messages (a conversation as it opens).
    Latest,
    /// Older than this one (scrolling up).
    Before(#[cfg_attr(feature = "ts", ts(type = "number"))] i64),
    /// Newer than this one (scrolling down after a search hit).
    After(#[cfg_attr(feature = "ts", ts(type = "number"))] i64),
    /// This one in the middle (a search hit opened).
    Around(#[cfg_attr(feature = "ts", ts(type = "number"))] i64),
}

/// Start following a reply the engine has just begun, from its first byte.
fn follow(core: &Core, sent: Sent, channel: Channel<ReplyFeed>) -> Sent {
    let engine = core.engine.clone();
    let id = sent.message_id;
    tauri::async_runtime::spawn(async move {
        match engine.watch_reply(id).await {
            Ok(watch) => stream::pump(watch, 0, stream::FRAME, stream::MAX_TEXT, |m| channel.send(m).is_ok()).await,
            Err(e) => tracing::warn!(message = id, error = %e, "cannot follow the reply"),
        }
    });
    sent
}

/// One page of conversations, pinned first, then newest first: `limit` (1–500) after the cursor
/// `after` (the previous page's `next`).
#[tauri::command]
pub async fn conversations(core: State<'_, Core>, after: Option<String>, limit: i64) -> Result<ConversationPage> {
    Ok(core.engine.conversations_page(after.as_deref(), limit.clamp(1, 500)).await?)
}

/// One page of conversation `conversationId`'s messages on the branch shown: the latest, or those
/// before, after or around a message (`at`); `limit` 1–1000.
#[tauri::command]
pub async fn messages(core: State<'_, Core>, conversation_id: i64, at: At, limit: i64) -> Result<MessagePage> {
    let at = match at {
        At::Latest => MessagesAt::Latest,
        At::Before(id) => MessagesAt::Before(id),
        At::After(id) => MessagesAt::After(id),
        At::Around(id) => MessagesAt::Around(id),
    };
    Ok(core.engine.messages(conversation_id, at, limit.clamp(1, 1000)).await?)
}

/// One message as stored (a reply's text so far while it streams).
#[tauri::command]
pub async fn message(core: State<'_, Core>, id: i64) -> Result<Message> {
    Ok(core.engine.message(id).await?)
}

/// Send `text` in conversation `conversationId` (a new conversation when null) over `route`;
/// returns at once, and the reply streams into `channel`.
#[tauri::command]
pub async fn send(
    core: State<'_, Core>,
    text: String,
    conversation_id: Option<i64>,
    route: Route,
    channel: Channel<ReplyFeed>,
) -> Result<Sent> {
    let reply = core.engine.send(text, route.options(conversation_id), CancellationToken::new()).await?;
    Ok(follow(&core, Sent { conversation_id: reply.conversation_id, message_id: reply.message_id }, channel))
}

/// A new version of reply `messageId` (the old one is kept), streaming into `channel`.
#[tauri::command]
pub async fn regenerate(core: State<'_, Core>, message_id: i64, route: Route, channel: Channel<ReplyFeed>) -> Result<Sent> {
    let reply = core.engine.regenerate(message_id, route.options(None), CancellationToken::new()).await?;
    Ok(follow(&core, Sent { conversation_id: reply.conversation_id, message_id: reply.message_id }, channel))
}

/// Edit user message `messageId` to `text` as a new branch (the old one stays) and stream the new
/// reply into `channel`.
#[tauri::command]
pub async fn edit_message(
    core: State<'_, Core>,
    message_id: i64,
    text: String,
    route: Route,
    channel: Channel<ReplyFeed>,
) -> Result<Sent> {
    let reply = core.engine.edit(message_id, text, route.options(None), CancellationToken::new()).await?;
    Ok(follow(&core, Sent { conversation_id: reply.conversation_id, message_id: reply.message_id }, channel))
}

/// Go on with reply `messageId` where it stopped, streaming into `channel`.
#[tauri::command]
pub async fn continue_reply(core: State<'_, Core>, message_id: i64, route: Route, channel: Channel<ReplyFeed>) -> Result<Sent> {
    let reply = core.engine.continue_reply(message_id, route.options(None), CancellationToken::new()).await?;
    Ok(follow(&core, Sent { conversation_id: reply.conversation_id, message_id: reply.message_id }, channel))
}

/// Follow reply `message_id` from byte `from` (what the window shows already): a reply
/// streaming here or in another process goes on live; a settled one just ends.
#[tauri::command]
pub async fn watch_reply(core: State<'_, Core>, message_id: i64, from: usize, channel: Channel<ReplyFeed>) -> Result<()> {
    let watch = core.engine.watch_reply(message_id).await?;
    tauri::async_runtime::spawn(stream::pump(watch, from, stream::FRAME, stream::MAX_TEXT, move |m| channel.send(m).is_ok()));
    Ok(())
}

/// Stop reply `messageId`, in whichever process streams it; what was written is kept. False if it
/// had already settled.
#[tauri::command]
pub async fn stop_reply(core: State<'_, Core>, message_id: i64) -> Result<bool> {
    Ok(core.engine.stop_reply(message_id).await?)
}

/// Show version `messageId` of its reply (or of an edited message) in its conversation: the branch
/// shown follows it.
#[tauri::command]
pub async fn show_version(core: State<'_, Core>, message_id: i64) -> Result<()> {
    Ok(core.engine.show_version(message_id).await?)
}

/// Rename a conversation (a title must not be empty).
#[tauri::command]
pub async fn rename_conversation(core: State<'_, Core>, id: i64, title: String) -> Result<()> {
    Ok(core.engine.rename_conversation(id, &title).await?)
}

/// Pin a conversation to the top of the list, or unpin it.
#[tauri::command]
pub async fn pin_conversation(core: State<'_, Core>, id: i64, pinned: bool) -> Result<()> {
    Ok(core.engine.pin_conversation(id, pinned).await?)
}

/// Delete a conversation and all its messages.
#[tauri::command]
pub async fn delete_conversation(core: State<'_, Core>, id: i64) -> Result<()> {
    Ok(core.engine.delete_conversation(id).await?)
}

/// Search as you type: conversations and messages holding every word of `query` (as a word or
/// the start of one), the best of the newest `limit` (1–200), with where the words are.
#[tauri::command]
pub async fn search(core: State<'_, Core>, query: String, limit: i64) -> Result<Vec<SearchHit>> {
    Ok(core.engine.search(&query, limit.clamp(1, 200)).await?)
}

/// Where an export or import went: the file, and how many conversations.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Transfer {
    /// The file written or read.
    pub path: String,
    /// How many conversations it holds.
    pub count: u32,
    /// The new conversations an import made, in the file's order (none for an export).
    #[cfg_attr(feature = "ts", ts(type = "Array<number>"))]
    pub ids: Vec<i64>,
}

/// Export conversations `ids` (every one when empty) to a file the person picks in a save
/// dialog: a `.json` name keeps them whole (for import), any other is Markdown (the branch
/// shown). Null when the dialog was closed without a file.
#[tauri::command]
pub async fn export_conversations<R: Runtime>(window: Window<R>, core: State<'_, Core>, ids: Vec<i64>) -> Result<Option<Transfer>> {
    let export = core.engine.export_conversations(ids).await?;
    let name = match export.conversations.as_slice() {
        [one] => format!("{}.md", file_stem(&one.title)),
        _ => "gatehouse-conversations.json".to_owned(),
    };
    let dialog = window.dialog().file().set_parent(&window).set_title("Export conversations").set_file_name(name);
    let dialog = dialog.add_filter("Markdown, for reading", &["md"]).add_filter("JSON, for import", &["json"]);
    let Some(path) = pick(|done| dialog.save_file(done)).await? else { return Ok(None) };
    let count = export.conversations.len() as u32;
    let at = path.clone();
    tauri::async_runtime::spawn_blocking(move || export::write_file(&export, export::Format::of_path(&at), &at))
        .await
        .map_err(|e| Failure::invalid(e.to_string()))??;
    Ok(Some(Transfer { path: path.display().to_string(), count, ids: Vec::new() }))
}

/// Import conversations from a JSON export the person picks in an open dialog, as new
/// conversations (all or nothing). Null when the dialog was closed without a file.
#[tauri::command]
pub async fn import_conversations<R: Runtime>(window: Window<R>, core: State<'_, Core>) -> Result<Option<Transfer>> {
    let dialog = window.dialog().file().set_parent(&window).set_title("Import conversations");
    let dialog = dialog.add_filter("Gatehouse export (JSON)", &["json"]);
    let Some(path) = pick(|done| dialog.pick_file(done)).await? else { return Ok(None) };
    let at = path.clone();
    let export = tauri::async_runtime::spawn_blocking(move || export::read_file(&at))
        .await
        .map_err(|e| Failure::invalid(e.to_string()))??;
    let ids = core.engine.import_conversations(export).await?;
    Ok(Some(Transfer { path: path.display().to_string(), count: ids.len() as u32, ids }))
}

/// A file dialog's answer, awaited (the dialog runs on the main thread; its callback says).
async fn pick(open: impl FnOnce(Box<dyn FnOnce(Option<FilePath>) + Send>)) -> Result<Option<std::path::PathBuf>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    open(Box::new(move |file| drop(tx.send(file))));
    match rx.await {
        Ok(Some(file)) => file.into_path().map(Some).map_err(|e| Failure::invalid(format!("not a local file: {e}"))),
        _ => Ok(None),
    }
}

/// A title as a file name: no path separators or control characters, at most 80 characters.
fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| if c == '/' || c == '\\' || c.is_control() { '-' } else { c })
        .take(80)
        .collect();
    match stem.trim().trim_start_matches('.') {
        "" => "conversation".to_owned(),
        s => s.to_owned(),
    }
}
