//! What only a terminal does: ask a person to approve a command, read a secret without
//! echoing it.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use gatehouse_engine::{Approval, ApprovalRequest, Approver};

/// One line from standard input; on a terminal, asked for on stderr and not echoed.
#[cfg(unix)]
pub fn read_secret(prompt: &str) -> std::io::Result<String> {
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

/// One line from standard input; on a console, asked for and not echoed (rpassword).
#[cfg(not(unix))]
pub fn read_secret(prompt: &str) -> std::io::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim().to_owned());
    }
    Ok(rpassword::prompt_password(prompt)?.trim().to_owned())
}

/// The terminal settings to restore if Ctrl-C comes while a secret is being typed.
#[cfg(unix)]
static mut SAVED_TERMIOS: Option<libc::termios> = None;

/// Ctrl-C at the token prompt: echo back on, then die of SIGINT as usual.
#[cfg(unix)]
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

/// Ask on the terminal (stdin must be one; else nobody here can approve). `timed` offers a
/// grant for 10 minutes besides "once".
async fn ask_on_terminal(request: &ApprovalRequest, timed: bool) -> Approval {
    if !std::io::stdin().is_terminal() {
        return Approval::Unavailable;
    }
    let (command, reason) = (request.prompt.clone(), request.reason.clone());
    let elsewhere = match request.id {
        0 => String::new(),
        id => format!("\n  (request {id}: it can also be answered with `gatehouse approvals allow {id}`)"),
    };
    tokio::task::spawn_blocking(move || {
        let choices = if timed { "y = once, t = this command for 10 minutes, N = no" } else { "y = yes, N = no" };
        // `command` comes escaped from the engine; the reason names a rule, whose patterns
        // may hold a model's exact arguments.
        eprint!("run `{command}`? ({}){elsewhere}\n  {choices}: ", crate::show::safe(&reason));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(_) => match answer.trim() {
                "y" | "Y" | "yes" => Approval::Once,
                "t" | "T" if timed => Approval::For(Duration::from_secs(600)),
                _ => Approval::Denied,
            },
            Err(_) => Approval::Unavailable,
        }
    })
    .await
    .unwrap_or(Approval::Unavailable)
}

/// Asks on the terminal. Without one: waits up to `wait` for an answer from another process
/// (`gatehouse approvals allow ID`, the app), or, with no wait, refuses at once.
pub struct Terminal {
    pub wait: Option<Duration>,
}

impl Approver for Terminal {
    fn approve(&self, request: &ApprovalRequest) -> gatehouse_engine::pool::kind::BoxFuture<Approval> {
        let (request, wait) = (request.clone(), self.wait);
        Box::pin(async move {
            if std::io::stdin().is_terminal() {
                return ask_on_terminal(&request, true).await;
            }
            let Some(wait) = wait else { return Approval::Unavailable };
            eprintln!(
                "`{}` needs approval ({}): waiting up to {} s for `gatehouse approvals allow {id}` (or deny {id}) from another terminal or the app",
                request.prompt,
                crate::show::safe(&request.reason),
                wait.as_secs_f64(),
                id = request.id
            );
            tokio::time::sleep(wait).await;
            Approval::Expired
        })
    }
}

/// Asks the person submitting an exec job, if they are at a terminal; if not, says that the
/// job will ask when it runs.
pub struct AtSubmit;

impl Approver for AtSubmit {
    fn approve(&self, request: &ApprovalRequest) -> gatehouse_engine::pool::kind::BoxFuture<Approval> {
        let request = request.clone();
        Box::pin(async move {
            if std::io::stdin().is_terminal() {
                return ask_on_terminal(&request, false).await;
            }
            eprintln!(
                "`{}` needs approval ({}); nobody is at this terminal to give it, so the job will wait for it when it \
                 starts: see `gatehouse approvals list`",
                request.prompt,
                crate::show::safe(&request.reason)
            );
            Approval::Unavailable
        })
    }
}
