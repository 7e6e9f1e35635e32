//! `gatehouse chats …`: stored conversations — list, show, search, rename, pin, delete, import,
//! export,
//! and the versions of their messages.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_engine::chat::export;
use gatehouse_engine::{Engine, MessageState};

use crate::{print_json, show, Failure, Outcome};

#[derive(clap::Subcommand)]
pub enum Chats {
    /// Conversations, most recent first
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One conversation, message by message
    Show {
        id: i64,
        /// Show it as the gateway holds it (OpenClaw keeps its own copy: it has replies the
        /// gateway finished while Gatehouse was not connected)
        #[arg(long)]
        from_gateway: bool,
    },
    /// Import conversations: from FILE, a JSON export (each as a new conversation); or, with
    /// no FILE, the ones a gateway keeps that were made elsewhere (OpenClaw sessions from its
    /// Control UI or another device) — run again to bring those up to date
    Import {
        /// A file written by `gatehouse chats export` (JSON)
        #[arg(conflicts_with = "gateway")]
        file: Option<PathBuf>,
        /// The gateway profile (default: the default profile)
        #[arg(long)]
        gateway: Option<String>,
    },
    /// Write conversations out: JSON keeps them whole (every version, the branch shown, tools)
    /// for `chats import FILE`; Markdown is the branch shown, for reading
    Export {
        /// Conversation ids [default: every conversation]
        ids: Vec<i64>,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write to FILE instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Find conversations and messages holding every word of QUERY (each word may be the
    /// start of one: `hel` finds "hello")
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Give a conversation a title
    Rename { id: i64, title: String },
    /// Delete a conversation and its messages
    Delete { id: i64 },
    /// Delete a message and everything that followed it (its other version, if any, is shown)
    DeleteMessage { message: i64 },
    /// Show another version of a message (a regenerated reply, an edited message)
    ShowVersion { message: i64 },
    /// Keep a conversation at the top of the list
    Pin { id: i64 },
    /// Let a pinned conversation take its place by date again
    Unpin { id: i64 },
}

/// How `chats export` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Json,
    /// (also `md`, as the design's CLI contract spells it)
    #[value(alias = "md")]
    Markdown,
}

pub async fn run(engine: &Engine, cmd: Chats, json: bool) -> Outcome {
    let cmd_pin = match &cmd {
        Chats::Pin { .. } => Some(true),
        Chats::Unpin { .. } => Some(false),
        _ => None,
    };
    match cmd {
        Chats::List { limit } => {
            let list = engine.conversations(limit.max(0)).await?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no conversations");
            } else {
                println!("{:>6}  {:>4}  {:<19}  {:<12}  TITLE", "ID", "MSGS", "UPDATED (UTC)", "GATEWAY");
                for c in list {
                    println!(
                        "{:>6}  {:>4}  {:<19}  {:<12}  {}",
                        c.id,
                        c.messages,
                        show::short_time(c.updated_at),
                        c.gateway.unwrap_or_default(),
                        format!("{}{}", if c.pinned { "(pinned) " } else { "" }, show::safe(&c.title))
                    );
                }
            }
        }
        Chats::Show { id, from_gateway: true } => {
            let messages = engine.gateway_history(id).await?;
            if json {
                print_json(&messages);
            } else {
                for m in messages {
                    println!("\n{}:\n{}", m.role.as_str(), m.content);
                }
            }
        }
        Chats::Show { id, from_gateway: false } => {
            let (conv, messages) = engine.conversation(id).await?;
            if json {
                print_json(&serde_json::json!({ "conversation": conv, "messages": messages }));
            } else {
                println!("# {} (conversation {})", conv.title, conv.id);
                for m in messages {
                    let note = match (m.state, &m.error) {
                        (MessageState::Complete, _) => String::new(),
                        (state, Some(e)) => format!("  [{}: {}]", state.as_str(), e.message),
                        (state, None) => format!("  [{}]", state.as_str()),
                    };
                    let versions = match m.versions.iter().position(|&v| v == m.id) {
                        Some(at) => {
                            let others: Vec<String> = m.versions.iter().filter(|&&v| v != m.id).map(i64::to_string).collect();
                            format!(", version {} of {}; others: {}", at + 1, m.versions.len(), others.join(", "))
                        }
                        None => String::new(),
                    };
                    println!("\n{} (message {}{versions}):{note}", m.role, m.id);
                    for t in &m.tools {
                        println!("[tool] {}", crate::show::safe_text(&t.summary));
                    }
                    println!("{}", crate::show::safe_text(&m.text));
                }
            }
        }
        Chats::Import { file: Some(file), .. } => {
            let export = export::read_file(&file)
                .map_err(|e| Failure::from(e).hint("it must be a file written by `gatehouse chats export` (JSON)"))?;
            let ids = engine.import_conversations(export).await?;
            if json {
                print_json(&serde_json::json!({ "imported": ids }));
            } else {
                let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                println!("imported {} conversation{}: {}", ids.len(), if ids.len() == 1 { "" } else { "s" }, list.join(", "));
            }
        }
        Chats::Export { ids, format, output } => {
            let export = engine.export_conversations(ids).await?;
            let format = match format {
                Format::Json => export::Format::Json,
                Format::Markdown => export::Format::Markdown,
            };
            match output {
                Some(path) => {
                    export::write_file(&export, format, &path)?;
                    let n = export.conversations.len();
                    if !json {
                        println!("exported {n} conversation{} to {}", if n == 1 { "" } else { "s" }, path.display());
                    }
                }
                None => print!("{}", format.render(&export)),
            }
        }
        Chats::Import { file: None, gateway } => {
            let (imported, failed) = engine.import_sessions(gateway.as_deref()).await?;
            if json {
                print_json(&serde_json::json!({ "imported": imported, "failed": failed }));
            } else if imported.is_empty() && failed.is_empty() {
                println!("the gateway keeps no conversations made elsewhere");
            } else {
                for i in imported {
                    let what = match (i.created, i.added, i.diverged) {
                        (true, n, _) => format!("imported, {n} messages"),
                        (false, _, true) => format!(
                            "its copy there no longer contains this one's latest messages; nothing added — see \
                             `gatehouse chats show {} --from-gateway`",
                            i.conversation_id
                        ),
                        (false, 0, _) => "up to date".to_owned(),
                        (false, n, _) => format!("{n} new messages"),
                    };
                    println!("conversation {}  {}  ({}; {what})", i.conversation_id, i.title, i.session);
                }
            }
            for f in &failed {
                eprintln!("not imported: {}: {}", f.session, f.error);
            }
            if !failed.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Chats::Search { query, limit } => {
            let hits = engine.search(&query, limit.max(0)).await?;
            if json {
                print_json(&hits);
            } else if hits.is_empty() {
                println!("nothing found");
            } else {
                for h in hits {
                    let found = marked(&h.snippet, &h.highlights);
                    match (h.message_id, h.role) {
                        (Some(id), Some(role)) => {
                            println!("conversation {} ({}), message {id}, {role}: {found}", h.conversation_id, show::safe(&h.title))
                        }
                        _ => println!("conversation {}: title {found}", h.conversation_id),
                    }
                }
            }
        }
        Chats::Rename { id, title } => {
            engine.rename_conversation(id, &title).await?;
            done(json, id, format!("conversation {id} renamed"));
        }
        Chats::Delete { id } => {
            engine.delete_conversation(id).await?;
            done(json, id, format!("conversation {id} deleted"));
        }
        Chats::DeleteMessage { message } => {
            engine.delete_message(message).await?;
            done(json, message, format!("message {message} and what followed it deleted"));
        }
        Chats::ShowVersion { message } => {
            engine.show_version(message).await?;
            done(json, message, format!("message {message} is shown"));
        }
        Chats::Pin { id } | Chats::Unpin { id } => {
            let pin = matches!(cmd_pin, Some(true));
            engine.pin_conversation(id, pin).await?;
            done(json, id, format!("conversation {id} {}", if pin { "pinned" } else { "unpinned" }));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Say what was done: a sentence, or `{"id": N}` with `--json`.
fn done(json: bool, id: i64, said: String) {
    if json {
        print_json(&serde_json::json!({ "id": id }));
    } else {
        println!("{said}");
    }
}

/// `text` with its highlighted ranges in `[` `]` (on a terminal, where the text itself is
/// shown escaped, the brackets are ours).
fn marked(text: &str, ranges: &[[usize; 2]]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &[start, end] in ranges {
        if start < at || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        out.push_str(&show::safe(&text[at..start]));
        out.push('[');
        out.push_str(&show::safe(&text[start..end]));
        out.push(']');
        at = end;
    }
    out.push_str(&show::safe(&text[at..]));
    out
}
