//! Every write the chat makes, one file each.

pub(crate) mod append_text;
pub(crate) mod delete_conversation;
pub(crate) mod delete_message;
pub(crate) mod import_conversations;
pub(crate) mod import_session;
pub(crate) mod interrupt_orphans;
pub(crate) mod pin;
pub(crate) mod record_tool;
pub(crate) mod rename;
pub(crate) mod request_stop;
pub(crate) mod settle;
pub(crate) mod show_version;
pub(crate) mod start_turn;
