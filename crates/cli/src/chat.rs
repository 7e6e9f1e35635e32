//! `gatehouse chat` and `gatehouse gateways …`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_engine::{Engine, GatewayKind, MessageState, Profile, ReplyEvent, SendOptions};
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
    /// Chat turn after turn; Ctrl-C stops a reply, Ctrl-D leaves
    #[arg(long, short, conflicts_with = "text")]
    interactive: bool,
    /// Let the model run commands with the `exec` tool (policy, sandbox and approvals apply;
    /// `ask` rules are asked on this terminal)
    #[arg(long)]
    tools: bool,
    /// The message (`-` reads it from standard input)
    #[arg(required_unless_present = "interactive")]
    text: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum Gateways {
    /// Add (or replace) a gateway profile; the first one becomes the default
    Add {
        name: String,
        #[arg(long, value_parser = parse_kind)]
        kind: GatewayKind,
        /// Base URL of the API, up to /v1 (e.g. http://127.0.0.1:11434/v1)
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// Environment variable that holds the token
        #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
        token_env: Option<String>,
        /// File (mode 600) that holds the token
        #[arg(long, value_name = "PATH", conflicts_with = "token_keyring")]
        token_file: Option<PathBuf>,
        /// Keep the token in the OS keyring (Secret Service, Keychain, Credential Manager); it is
        /// read from standard input (asked for, not echoed, on a terminal)
        #[arg(long, conflicts_with = "token_env")]
        token_keyring: bool,
    },
    /// Gateway profiles
    List,
    /// Remove a profile
    Remove { name: String },
    /// Check that a gateway answers and accepts its token
    Test { name: Option<String> },
    /// Make a profile the default
    Default { name: String },
}

fn parse_kind(s: &str) -> Result<GatewayKind, String> {
    GatewayKind::parse(s).ok_or_else(|| format!("unknown kind `{s}`; use openai, openclaw or local"))
}

pub async fn chat(engine: &Engine, args: ChatArgs, json: bool) -> Outcome {
    let options = SendOptions {
        conversation: args.conversation,
        gateway: args.gateway,
        model: args.model,
        temperature: None,
        exec_tool: args.tools.then(|| std::sync::Arc::new(crate::exec::Terminal { wait: None }) as std::sync::Arc<dyn gatehouse_engine::Approver>),
    };
    if args.interactive {
        return interactive(engine, options).await;
    }
    let text = match args.text.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Failure::new("cli.stdin", format!("cannot read standard input: {e}"), 2))?;
            text
        }
        Some(text) => text.to_owned(),
        None => unreachable!("clap requires TEXT unless --interactive"),
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    let (state, conversation) = turn(engine, text, &options, cancel, json).await?;
    if json {
        let (conv, messages) = engine.conversation(conversation).await?;
        print_json(&serde_json::json!({ "conversation": conv, "reply": messages.last() }));
    }
    Ok(match state {
        MessageState::Complete => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// One turn: send, print the reply as it streams, report how it ended.
async fn turn(
    engine: &Engine,
    text: String,
    options: &SendOptions,
    cancel: CancellationToken,
    quiet: bool,
) -> Result<(MessageState, i64), Failure> {
    let mut reply = engine.send(text, options.clone(), cancel).await?;
    let mut out = std::io::stdout();
    let mut wrote_any = false;
    let mut ends_in_newline = true;
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
                return Ok((state, reply.conversation_id));
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
        let result = turn(engine, text.to_owned(), &options, cancel, false).await;
        *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match result {
            Ok((_, conversation)) => options.conversation = Some(conversation),
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

pub async fn gateways(engine: &Engine, cmd: Gateways, json: bool) -> Outcome {
    match cmd {
        Gateways::Add { name, kind, url, model, token_env, token_file, token_keyring } => {
            let token_file = match token_file {
                Some(f) => Some(std::path::absolute(&f).map_err(|e| Failure::new("gateway.invalid", e.to_string(), 2))?),
                None => None,
            };
            let profile = Profile { name: name.clone(), kind, url, model, token_env, token_file, token_keyring, is_default: false };
            // Checked before the token is asked for; kept before the profile is saved.
            profile.validate()?;
            if token_keyring {
                let token = read_secret(&format!("token for gateway {name} (not shown): "))
                    .map_err(|e| Failure::new("gateway.invalid", format!("could not read the token: {e}"), 2))?;
                engine.keep_gateway_token(&name, token).await?;
            }
            engine.add_gateway(profile).await?;
            if !json {
                println!("gateway {name} saved; check it with `gatehouse gateways test {name}`");
            }
        }
        Gateways::List => {
            let list = engine.gateways().await?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no gateways; add one with `gatehouse gateways add NAME --kind openai --url URL`");
            } else {
                for p in list {
                    let token = match (&p.token_env, &p.token_file) {
                        _ if p.token_keyring => "token in the keyring".into(),
                        (Some(var), _) => {
                            let set = if std::env::var_os(var).is_some() { "set" } else { "NOT set" };
                            format!("token from ${var} ({set})")
                        }
                        (_, Some(file)) => format!("token from {}", file.display()),
                        _ => "no token".into(),
                    };
                    println!(
                        "{}{}  {}  {}  model: {}  {token}",
                        p.name,
                        if p.is_default { " (default)" } else { "" },
                        p.kind.as_str(),
                        p.url.as_deref().unwrap_or("-"),
                        p.model.as_deref().unwrap_or(match p.kind {
                            GatewayKind::Local => "the default local model",
                            _ => "server default",
                        }),
                    );
                }
            }
        }
        Gateways::Remove { name } => {
            engine.remove_gateway(&name).await?;
            if !json {
                println!("gateway {name} removed");
            }
        }
        Gateways::Default { name } => {
            engine.set_default_gateway(&name).await?;
            if !json {
                println!("gateway {name} is now the default");
            }
        }
        Gateways::Test { name } => {
            let (_, gateway) = engine.open_gateway(name.as_deref()).await?;
            let sentence = gateway.check().await?;
            if json {
                print_json(&serde_json::json!({ "ok": true, "message": sentence }));
            } else {
                println!("{sentence}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line from standard input; on a terminal, asked for on stderr and not echoed.
fn read_secret(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let mut line = String::new();
    if !stdin.is_terminal() {
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim().to_owned());
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    // SAFETY: termios calls on standard input with a struct that tcgetattr fills; the saved
    // settings go where the SIGINT handler can restore them (tcsetattr is async-signal-safe).
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        SAVED_TERMIOS = Some(t);
        libc::signal(libc::SIGINT, restore_and_interrupt as *const () as libc::sighandler_t);
        t.c_lflag &= !libc::ECHO;
        if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
            // Echo is still on: do not ask for a secret that would show.
            return Err(std::io::Error::last_os_error());
        }
    }
    let read = stdin.lock().read_line(&mut line);
    // SAFETY: restores the settings read above, then the default SIGINT.
    unsafe {
        if let Some(saved) = std::ptr::replace(std::ptr::addr_of_mut!(SAVED_TERMIOS), None) {
            libc::tcsetattr(0, libc::TCSANOW, &saved);
        }
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    eprintln!();
    read?;
    Ok(line.trim().to_owned())
}

/// The terminal settings to restore if Ctrl-C comes while a secret is being typed.
static mut SAVED_TERMIOS: Option<libc::termios> = None;

/// Ctrl-C at the token prompt: echo back on, then die of SIGINT as usual.
extern "C" fn restore_and_interrupt(_: libc::c_int) {
    // SAFETY: only async-signal-safe calls; SAVED_TERMIOS was written before this handler was set.
    unsafe {
        if let Some(saved) = &*std::ptr::addr_of!(SAVED_TERMIOS) {
            libc::tcsetattr(0, libc::TCSANOW, saved);
        }
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::raise(libc::SIGINT);
    }
}
