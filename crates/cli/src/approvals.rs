//! `gatehouse approvals …`: answer, from any terminal, a command that waits for a person —
//! whichever process asked (an exec job in a `gatehouse worker`, `gatehouse chat --tools`,
//! `gatehouse exec --approval-wait`, the desktop app).

use std::process::ExitCode;
use std::time::Duration;

use gatehouse_engine::{Approval, ApprovalRequest, Engine};

use crate::{print_json, show, Outcome};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Commands waiting for a person now
    List,
    /// Let the command run, once — or for a while, with --for
    Allow {
        id: i64,
        /// Also run the same command (same file, same arguments, same directory, same kind of
        /// requester) without asking, for this many seconds (at most a day)
        #[arg(long = "for", value_name = "SECS", value_parser = crate::args::parse_secs)]
        lasts: Option<Duration>,
    },
    /// Refuse the command
    Deny { id: i64 },
}

pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Outcome {
    let answered = match cmd {
        Command::List => {
            let open = engine.approvals().await?;
            if json {
                print_json(&open);
            } else if open.is_empty() {
                println!("no command is waiting for approval");
            } else {
                for request in &open {
                    print(request);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Allow { id, lasts: None } => engine.answer_approval(id, Approval::Once).await?,
        Command::Allow { id, lasts: Some(d) } => engine.answer_approval(id, Approval::For(d)).await?,
        Command::Deny { id } => engine.answer_approval(id, Approval::Denied).await?,
    };
    if json {
        print_json(&answered);
    } else {
        let how = match answered.grant_secs {
            Some(secs) => format!("allowed for {secs} s"),
            None => answered.state.as_str().to_owned(),
        };
        println!("request {}: {how}", answered.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// Who asks, in words.
pub fn asker(request: &ApprovalRequest) -> String {
    match (request.requester.as_str(), request.job_id, request.conversation_id) {
        ("job", Some(job), _) => format!("job {job}"),
        ("model", _, Some(conversation)) => format!("the model in conversation {conversation}"),
        ("model", _, None) => "the model".into(),
        _ => "a person".into(),
    }
}

fn print(r: &ApprovalRequest) {
    // The prompt and the reason come escaped from the engine; safe() again for --raw's sake
    // is not wanted here: the question must never carry control characters.
    println!("{:>5}  {}  asked by {}, open until {}", r.id, show::short_time(r.asked_at), asker(r), show::short_time(r.expires_at));
    println!("       run `{}`", r.prompt);
    println!("       because: {}", gatehouse_engine::exec::shown(&r.reason));
}
