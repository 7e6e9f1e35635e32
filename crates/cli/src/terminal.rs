//! What only a terminal does: read a secret without echoing it.

/// One line from standard input; on a terminal, asked for on stderr and not echoed.
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
