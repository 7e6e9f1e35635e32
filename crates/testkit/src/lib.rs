//! A loopback HTTP server for tests that writes exactly the bytes it is told to, split and
//! paced as told: the faults a real OpenAI-compatible server cannot be made to produce on
//! demand (a cut mid-chunk, a stall, an error after a 200). It is a mock, named as such.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with each request.
#[derive(Clone)]
pub enum Step {
    /// Write these bytes, one TCP segment each (nodelay).
    Write(Vec<u8>),
    /// Write these bytes one byte per segment.
    Trickle(Vec<u8>),
    /// Wait, then go on.
    Pause(Duration),
    /// Hang until the client goes away.
    Stall,
}

pub struct Server {
    pub url: String,
    /// Requests received so far.
    pub requests: Arc<AtomicUsize>,
    /// Their bodies.
    pub bodies: Arc<std::sync::Mutex<Vec<String>>>,
    /// Their request lines and headers, lowercased.
    pub heads: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Serve `steps` to every request on a new loopback port.
pub async fn serve(steps: Vec<Step>) -> Server {
    serve_each(vec![steps]).await
}

/// Serve `scripts[i]` to the i-th request (the last script to every later one).
pub async fn serve_each(scripts: Vec<Vec<Step>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen, seen_heads) = (requests.clone(), bodies.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            let (head, body) = read_request(&mut sock).await;
            seen_heads.lock().unwrap().push(head);
            let n = count.fetch_add(1, Ordering::SeqCst);
            seen.lock().unwrap().push(body);
            let steps = scripts[n.min(scripts.len() - 1)].clone();
            tokio::spawn(async move {
                for step in steps {
                    let ok = match step {
                        Step::Write(b) => sock.write_all(&b).await.is_ok(),
                        Step::Trickle(b) => {
                            let mut ok = true;
                            for byte in b {
                                ok &= sock.write_all(&[byte]).await.is_ok();
                            }
                            ok
                        }
                        Step::Pause(d) => {
                            tokio::time::sleep(d).await;
                            true
                        }
                        Step::Stall => {
                            let mut buf = [0u8; 1];
                            let _ = sock.read(&mut buf).await; // returns when the client closes
                            false
                        }
                    };
                    if !ok {
                        return;
                    }
                }
                // Dropping the socket closes the connection.
            });
        }
    });
    Server { url, requests, bodies, heads }
}

/// Read one request (headers and a Content-Length body); return its head (lowercased) and body.
async fn read_request(sock: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
        }
    }
}

/// A 200 with `text/event-stream`, closed by the server at the end.
pub fn sse_head() -> Step {
    Step::Write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_vec())
}

/// A whole response with this status, extra header lines and body.
pub fn status(code: u16, headers: &str, body: &str) -> Step {
    Step::Write(
        format!("HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}", body.len())
            .into_bytes(),
    )
}

/// One `chat.completion.chunk` event carrying `text`.
pub fn delta(text: &str) -> String {
    format!("data: {}\n\n", serde_json::json!({"choices":[{"index":0,"delta":{"content":text}}]}))
}


/// Live processes (not zombies) whose environment has exactly the variable `name=value`
/// given as `var`: how tests find the processes of a job or command, whose pids are private
/// to their sandbox.
pub fn processes_with_env(var: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z ")))
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .filter(|env| env.split(|b| *b == 0).any(|v| v == var.as_bytes()))
        .count()
}

/// Poll `check` every 20 ms until it gives a value; fail the test after `within`. For waiting
/// on another process's visible state, where there is no event to wait on.
pub fn eventually<T>(what: &str, within: Duration, check: impl FnMut() -> Option<T>) -> T {
    eventually_or(within, check).unwrap_or_else(|| panic!("gave up waiting for {what}"))
}

/// [`eventually`], but `None` once `within` has passed, for a caller with more to say.
pub fn eventually_or<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything a child writes to its stdout, gathered by a thread as it comes.
pub fn collect_stdout(child: &mut std::process::Child) -> Arc<std::sync::Mutex<String>> {
    collect(child.stdout.take().expect("stdout piped"))
}

/// Everything read from `from` (a child's stdout or stderr), gathered by a thread as it comes —
/// so its last line may be incomplete: a reader of lines parses up to the last `\n`.
pub fn collect(mut from: impl std::io::Read + Send + 'static) -> Arc<std::sync::Mutex<String>> {
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // Bytes of a character cut by a read's end wait for the rest, so a multi-byte character
        // is never shown as two replacement characters.
        let mut pending = Vec::new();
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            let whole = match std::str::from_utf8(&pending) {
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                _ => pending.len(),
            };
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&pending[..whole]));
            pending.drain(..whole);
        }
        sink.lock().unwrap().push_str(&String::from_utf8_lossy(&pending));
    });
    seen
}

/// A loopback TCP proxy the test controls: it forwards every connection to `target` until
/// [`Proxy::cut`] drops all the connections open at that moment (new ones are accepted as
/// before) — a network cut mid-reply, on demand, in front of a real peer.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: tokio::sync::broadcast::Sender<()>,
    freeze: tokio::sync::broadcast::Sender<()>,
    /// Cut the first connection as soon as the client has sent this many WebSocket frames
    /// (after its HTTP upgrade), before the server's answer to the last one gets back.
    cut_after_frames: Arc<AtomicUsize>,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::broadcast::channel::<()>(4);
        let (freeze, _) = tokio::sync::broadcast::channel::<()>(4);
        let accepted = Arc::new(AtomicUsize::new(0));
        let cut_after_frames = Arc::new(AtomicUsize::new(0));
        let (cut_tx, freeze_tx, count, after) = (cut.clone(), freeze.clone(), accepted.clone(), cut_after_frames.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (mut cut_rx, freeze_rx) = (cut_tx.subscribe(), freeze_tx.subscribe());
                let frames = if n == 0 { after.load(Ordering::SeqCst) } else { 0 };
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = pipe(inbound, outbound, frames, freeze_rx) => {}
                        _ = cut_rx.recv() => {}
                    }
                    // Dropping both sockets closes them: the client sees its connection end.
                });
            }
        });
        Proxy { addr, cut, freeze, accepted, cut_after_frames }
    }

    /// Make the first connection end right after the client's `n`th WebSocket frame has
    /// reached the server (set before the client connects).
    pub fn cut_first_after_frames(&self, n: usize) {
        self.cut_after_frames.store(n, Ordering::SeqCst);
    }

    /// Drop every connection open now.
    pub fn cut(&self) {
        let _ = self.cut.send(());
    }

    /// Stop forwarding on every connection open now but keep them open: a half-open link
    /// (a suspended laptop, a NAT that forgot the flow) that TCP itself never reports.
    pub fn freeze(&self) {
        let _ = self.freeze.send(());
    }
}

/// Forward both ways; with `cut_after` > 0, stop once the client has sent that many whole
/// WebSocket frames after its HTTP upgrade request (nothing more from the server gets back).
async fn pipe(inbound: TcpStream, outbound: TcpStream, cut_after: usize, mut freeze: tokio::sync::broadcast::Receiver<()>) {
    let (mut client_r, mut client_w) = inbound.into_split();
    let (mut server_r, mut server_w) = outbound.into_split();
    let down = async {
        let _ = tokio::io::copy(&mut server_r, &mut client_w).await;
    };
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen: Vec<u8> = Vec::new();
        let (mut upgraded, mut frames) = (false, 0usize);
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if server_w.write_all(&buf[..n]).await.is_err() {
                return;
            }
            if cut_after == 0 {
                continue;
            }
            seen.extend_from_slice(&buf[..n]);
            if !upgraded {
                let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                seen.drain(..end + 4);
                upgraded = true;
            }
            // Whole frames: 2 header bytes, extended length, 4 mask bytes (clients mask), payload.
            while seen.len() >= 2 {
                let short = (seen[1] & 0x7f) as usize;
                let (len, header) = match short {
                    126 if seen.len() >= 4 => (u16::from_be_bytes([seen[2], seen[3]]) as usize, 4),
                    127 if seen.len() >= 10 => (u64::from_be_bytes(seen[2..10].try_into().unwrap()) as usize, 10),
                    126 | 127 => break,
                    n => (n, 2),
                };
                let total = header + 4 + len;
                if seen.len() < total {
                    break;
                }
                seen.drain(..total);
                frames += 1;
                if frames >= cut_after {
                    return;
                }
            }
        }
    };
    let frozen = tokio::select! {
        _ = down => false,
        _ = up => false,
        _ = freeze.recv() => true,
    };
    if frozen {
        // Both sockets stay open (they live in this frame), silent, until cut.
        std::future::pending::<()>().await;
    }
}

/// The built-in model's file for tests that run it: `GATEHOUSE_TEST_MODEL` (scripts/test
/// fetches it with `gatehouse models fetch`), else the default data directory's.
pub fn builtin_model() -> std::path::PathBuf {
    let file = std::env::var_os("GATEHOUSE_TEST_MODEL").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
        home.join(".local/share/gatehouse/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    assert!(file.exists(), "the built-in model is needed at {}: run `gatehouse models fetch` or set GATEHOUSE_TEST_MODEL", file.display());
    file
}

/// Check the part of a generated doc between `start` and `end` (marker lines) is `want`; with
/// `GATEHOUSE_BLESS` set, write `want` there instead. `regenerate` is the command that does
/// that, for the failure's message.
pub fn generated_section(file: &std::path::Path, start: &str, end: &str, want: &str, regenerate: &str) {
    let doc = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (from, to) = (doc.find(start).expect("the section's start marker"), doc.find(end).expect("its end marker"));
    let now = &doc[from + start.len()..to];
    if now == want {
        return;
    }
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        std::fs::write(file, format!("{}{want}{}", &doc[..from + start.len()], &doc[to..])).unwrap();
        return;
    }
    let at = now.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(now.lines().count().min(want.lines().count()));
    panic!(
        "{} is not current (first difference at the section's line {}: {:?} vs {:?}); run `{regenerate}` and commit the result",
        file.display(),
        at + 1,
        now.lines().nth(at),
        want.lines().nth(at)
    );
}
