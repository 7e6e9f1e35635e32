//! Chat commands: each validates, calls one engine method and maps its error. Replies stream
//! through a channel per reply ([`crate::stream`]); conversation news comes as the
//! `conversation` event ([`crate::events`]).

use std::sync::Arc;

use gatehouse_engine::exec::approval::Elsewhere;
use gatehouse_engine::{Approver, ConversationPage, Message, MessagePage, MessagesAt, ReplyFeed, SearchHit, SendOptions};
use tauri::ipc::Channel;
use tauri::State;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
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

#[tauri::command]
pub async fn conversations(core: State<'_, Core>, after: Option<String>, limit: i64) -> Result<ConversationPage> {
    Ok(core.engine.conversations_page(after.as_deref(), limit.clamp(1, 500)).await?)
}

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

#[tauri::command]
pub async fn message(core: State<'_, Core>, id: i64) -> Result<Message> {
    Ok(core.engine.message(id).await?)
}

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

#[tauri::command]
pub async fn regenerate(core: State<'_, Core>, message_id: i64, route: Route, channel: Channel<ReplyFeed>) -> Result<Sent> {
    let reply = core.engine.regenerate(message_id, route.options(None), CancellationToken::new()).await?;
    Ok(follow(&core, Sent { conversation_id: reply.conversation_id, message_id: reply.message_id }, channel))
}

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

#[tauri::command]
pub async fn stop_reply(core: State<'_, Core>, message_id: i64) -> Result<bool> {
    Ok(core.engine.stop_reply(message_id).await?)
}

#[tauri::command]
pub async fn show_version(core: State<'_, Core>, message_id: i64) -> Result<()> {
    Ok(core.engine.show_version(message_id).await?)
}

#[tauri::command]
pub async fn rename_conversation(core: State<'_, Core>, id: i64, title: String) -> Result<()> {
    Ok(core.engine.rename_conversation(id, &title).await?)
}

#[tauri::command]
pub async fn pin_conversation(core: State<'_, Core>, id: i64, pinned: bool) -> Result<()> {
    Ok(core.engine.pin_conversation(id, pinned).await?)
}

#[tauri::command]
pub async fn delete_conversation(core: State<'_, Core>, id: i64) -> Result<()> {
    Ok(core.engine.delete_conversation(id).await?)
}

#[tauri::command]
pub async fn search(core: State<'_, Core>, query: String, limit: i64) -> Result<Vec<SearchHit>> {
    Ok(core.engine.search(&query, limit.clamp(1, 200)).await?)
}
