//! `gatehouse chat`: one turn, or an interactive session.

use std::io::Write;
use std::process::ExitCode;

use gatehouse_engine::{Engine, MessageState, ReplyEvent, SendOptions};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::{print_json, Failure, Outcome};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Gateway profile [default: the default profile]
    #[arg(long)]
    gateway: Option<String>,
    /// Model [default: the profile's]
    #[arg(long)]
    model: Option<String>,
    /// Continue this conversation
    #[arg(long, value_name = "ID")]
    conversation: Option<i64>,
    /// Ask again for reply ID (message ids are in `gatehouse chats show`); the old version is kept
    #[arg(long, value_name = "ID", conflicts_with_all = ["text", "conversation", "edit", "continue_reply"])]
    regenerate: Option<i64>,
    /// Replace your message ID with TEXT and get a new reply; the old version is kept
    #[arg(long, value_name = "ID", requires = "text", conflicts_with_all = ["conversation", "continue_reply"])]
    edit: Option<i64>,
    /// Continue reply ID where it was interrupted
    #[arg(long = "continue", value_name = "ID", conflicts_with_all = ["text", "conversation"])]
    continue_reply: Option<i64>,
    /// Chat turn after turn; Ctrl-C stops a reply, Ctrl-D leaves
    #[arg(long, short, conflicts_with_all = ["text", "regenerate", "edit", "continue_reply"])]
    interactive: bool,
    /// Let the model run commands with the `exec` tool (policy, sandbox and approvals apply;
    /// `ask` rules are asked on this terminal)
    #[arg(long)]
    tools: bool,
    /// With --tools and no terminal to ask on (a script), wait this long for an approval given
    /// from another terminal (`gatehouse approvals allow ID`) or the app [default: refuse at once]
    #[arg(long, value_name = "SECS", value_parser = crate::args::parse_secs, requires = "tools")]
    approval_wait: Option<std::time::Duration>,
    /// The message (`-` reads it from standard input)
    #[arg(required_unless_present_any = ["interactive", "regenerate", "continue_reply"])]
    text: Option<String>,
}

/// What a turn does.
enum Ask {
    Say(String),
    Edit(i64, String),
    Regenerate(i64),
    Continue(i64),
}

pub async fn chat(engine: &Engine, args: ChatArgs, json: bool) -> Outcome {
    let options = SendOptions {
        conversation: args.conversation,
        gateway: args.gateway,
        model: args.model,
        temperature: None,
        exec_tool: args.tools.then(|| std::sync::Arc::new(crate::terminal::Terminal { wait: args.approval_wait }) as std::sync::Arc<dyn gatehouse_engine::Approver>),
    };
    if args.interactive {
        return interactive(engine, options).await;
    }
    let text = match args.text.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Failure::new("cli.stdin", format!("cannot read standard input: {e}"), 2))?;
            Some(text)
        }
        text => text.map(str::to_owned),
    };
    let ask = match (args.regenerate, args.edit, args.continue_reply, text) {
        (Some(id), ..) => Ask::Regenerate(id),
        (_, Some(id), _, Some(text)) => Ask::Edit(id, text),
        (.., Some(id), _) => Ask::Continue(id),
        (.., Some(text)) => Ask::Say(text),
        _ => unreachable!("clap requires TEXT unless --interactive, --regenerate or --continue"),
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    let (state, conversation, reply) = turn(engine, ask, &options, cancel, json).await?;
    if json {
        let (conv, _) = engine.conversation(conversation).await?;
        print_json(&serde_json::json!({ "conversation": conv, "reply": engine.message(reply).await? }));
    }
    Ok(match state {
        MessageState::Complete => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// One turn: send, print the reply as it streams, report how it ended (and where: the
/// conversation and the reply).
async fn turn(
    engine: &Engine,
    ask: Ask,
    options: &SendOptions,
    cancel: CancellationToken,
    quiet: bool,
) -> Result<(MessageState, i64, i64), Failure> {
    let options = options.clone();
    // A continued reply is shown from its start.
    let mut so_far = String::new();
    let mut reply = match ask {
        Ask::Say(text) => engine.send(text, options, cancel).await?,
        Ask::Edit(id, text) => engine.edit(id, text, options, cancel).await?,
        Ask::Regenerate(id) => engine.regenerate(id, options, cancel).await?,
        Ask::Continue(id) => {
            // Read before it goes on: the stored text grows once it does.
            so_far = engine.message(id).await?.text;
            engine.continue_reply(id, options, cancel).await?
        }
    };
    let mut out = std::io::stdout();
    let mut wrote_any = !so_far.is_empty() && !quiet;
    let mut ends_in_newline = so_far.is_empty() || so_far.ends_with('\n');
    if wrote_any {
        let _ = out.write_all(crate::show::safe_text(&so_far).as_bytes());
    }
    while let Some(event) = reply.events.recv().await {
        match event {
            ReplyEvent::Tool(outcome) => {
                if !quiet {
                    if wrote_any && !ends_in_newline {
                        println!();
                    }
                    eprintln!("[tool] {}", crate::show::safe_text(&outcome.summary));
                    ends_in_newline = true;
                }
            }
            ReplyEvent::Delta { text, .. } => {
                if !quiet {
                    let _ = out.write_all(crate::show::safe_text(&text).as_bytes());
                    let _ = out.flush();
                    wrote_any = true;
                    ends_in_newline = text.ends_with('\n');
                }
            }
            ReplyEvent::Finished { state, error } => {
                if wrote_any && !ends_in_newline {
                    println!();
                }
                match (state, error) {
                    (MessageState::Complete, _) => {}
                    (_, Some(e)) => {
                        let kept = if wrote_any { " (the partial reply was kept)" } else { "" };
                        eprintln!("error: {e}{kept}");
                    }
                    (_, None) => eprintln!("[stopped; the partial reply was kept]"),
                }
                return Ok((state, reply.conversation_id, reply.message_id));
            }
        }
    }
    Err(Failure::new("chat.lost", "the reply stream ended without an outcome", 1))
}

async fn interactive(engine: &Engine, mut options: SendOptions) -> Outcome {
    match options.conversation {
        Some(id) => {
            let (conv, messages) = engine.conversation(id).await?;
            eprintln!("continuing conversation {id}: {} ({} messages)", conv.title, messages.len());
        }
        None => eprintln!("new conversation; Ctrl-C stops a reply, Ctrl-D leaves"),
    }
    // Ctrl-C cancels whatever reply is streaming; at the prompt it only prints a hint.
    let current: std::sync::Arc<std::sync::Mutex<Option<CancellationToken>>> = Default::default();
    let watcher = current.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            match watcher.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                Some(token) => token.cancel(),
                None => eprint!("\n(Ctrl-D or /exit to leave)\nyou> "),
            }
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("you> ");
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => {
                eprintln!();
                break;
            }
            Err(e) => return Err(Failure::new("cli.stdin", format!("cannot read standard input: {e}"), 1)),
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/exit" || text == "/quit" {
            break;
        }
        let cancel = CancellationToken::new();
        *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel.clone());
        let result = turn(engine, Ask::Say(text.to_owned()), &options, cancel, false).await;
        *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match result {
            Ok((_, conversation, _)) => options.conversation = Some(conversation),
            // A refused turn (no gateway, say) ends the session only if nothing can work.
            Err(f) if f.code.starts_with("gateway.") && options.conversation.is_none() => return Err(f),
            Err(f) => eprintln!("error: {}", f.message),
        }
    }
    if let Some(id) = options.conversation {
        eprintln!("saved as conversation {id}; resume with `gatehouse chat --interactive --conversation {id}`");
    }
    Ok(ExitCode::SUCCESS)
}
