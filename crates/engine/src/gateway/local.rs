//! The built-in `local` gateway: a GGUF chat model run in-process by llama.cpp.
//!
//! Layout: one [`LocalModel`] per model file, loaded once per process and shared by every
//! chat and prompt job that uses it. It owns a dedicated OS thread (inference is seconds of
//! CPU; on the async runtime it would stall everything else), which owns the model and one
//! llama.cpp context. Requests reach the thread through a channel; replies go back as the same
//! [`ChatEvent`] deltas every gateway streams.
//!
//! Fairness: the context holds [`SLOTS`] sequences, and every step decodes one token for each
//! running sequence in a single batch (continuous batching, as llama.cpp's server does). Running
//! four replies at once therefore costs little more than one — reading the weights dominates a
//! step — and a chat typed while prompt jobs run starts at the next step instead of after them.
//! Requests beyond the slots wait in the channel, in arrival order. A new prompt is read in
//! chunks of [`PREFILL_CHUNK`] tokens so a long one cannot stall the others' streams for long.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ChatEvent, ChatMessage, ChatRequest, ChatStream, Gateway, Role};
use crate::error::{Error, Result};

/// Sequences decoded together. Four covers the pool's default three workers plus a chat; more
/// would grow the KV cache (memory) for replies that would each get slower.
pub const SLOTS: u32 = 4;

/// Tokens of context per sequence (prompt + reply). The cache for all slots is allocated when
/// the model loads: 4 × 2048 tokens is ~190 MB for SmolLM2-135M.
pub const CONTEXT_PER_SLOT: u32 = 2048;

/// Prompt tokens read per step for one sequence: small enough that the other replies keep
/// streaming while a long prompt is read, large enough to read it at batch speed.
const PREFILL_CHUNK: usize = 128;

/// Reply length when the request sets none: a small model at temperature 0 can repeat itself
/// forever, and a reply should end.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// How a model is run.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Inference threads. One on machines with two cores or fewer: measured here, a second
    /// thread competing with anything else on the machine made generation 10–50× slower.
    pub threads: u32,
}

impl Default for LocalConfig {
    fn default() -> LocalConfig {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let threads = std::env::var("GATEHOUSE_LOCAL_THREADS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&n| (1..=256).contains(&n))
            .unwrap_or(if cores <= 2 { 1 } else { (cores / 2).min(8) });
        LocalConfig { threads }
    }
}

/// llama.cpp's process-wide state: initialised once, never torn down. Public so that code
/// using llama.cpp directly in the same process (the benchmark's bare baseline) shares it:
/// a second initialisation is refused.
pub fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp writes its load chatter to stderr; through tracing it is filtered
            // like every other log (`RUST_LOG=llama_cpp_2=debug` to see it).
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::ModelLoad { path: PathBuf::new(), reason: format!("llama.cpp did not start: {e}") })
}

struct Request {
    messages: Vec<ChatMessage>,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    cancel: CancellationToken,
    /// Unbounded so the inference thread never waits for a reader: one slow reader would
    /// stall every sequence. Its size is bounded by the reply length.
    events: mpsc::UnboundedSender<Result<ChatEvent>>,
}

/// A loaded (or loading) model and its inference thread.
pub struct LocalModel {
    name: String,
    path: PathBuf,
    requests: std_mpsc::Sender<Request>,
    /// Set by the thread when the model could not be loaded, so the next use loads it afresh
    /// (the file may have been fixed) instead of failing forever.
    failed: Arc<AtomicBool>,
}

impl LocalModel {
    /// Start the inference thread; the model loads there, and requests sent meanwhile wait.
    pub fn start(name: &str, path: &Path, config: LocalConfig) -> Result<Arc<LocalModel>> {
        let (tx, rx) = std_mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let thread_failed = failed.clone();
        let thread_path = path.to_owned();
        let thread_name = name.to_owned();
        std::thread::Builder::new()
            .name(format!("gatehouse-local-{name}"))
            .spawn(move || {
                if let Err(e) = serve(&thread_name, &thread_path, &config, &rx) {
                    thread_failed.store(true, Ordering::SeqCst);
                    tracing::warn!(model = %thread_name, error = %e, "local model stopped");
                    // Answer what is waiting (and anything racing in) with the reason.
                    while let Ok(req) = rx.try_recv() {
                        let _ = req.events.send(Err(again(&e)));
                    }
                }
            })
            .map_err(|e| Error::ModelLoad { path: path.to_owned(), reason: format!("no thread for the model: {e}") })?;
        Ok(Arc::new(LocalModel { name: name.to_owned(), path: path.to_owned(), requests: tx, failed }))
    }

    /// The model's name (its file in `models/` is NAME.gguf).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GGUF file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Still usable: false once its thread has stopped on a load failure.
    pub fn is_usable(&self) -> bool {
        !self.failed.load(Ordering::SeqCst)
    }

    /// Stream a reply. The stream ends at once when `cancel` fires, and the sequence's slot is
    /// freed at the thread's next step.
    pub fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> ChatStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let req = Request {
            messages: request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            cancel: cancel.clone(),
            events: tx,
        };
        if let Err(std_mpsc::SendError(req)) = self.requests.send(req) {
            let _ = req.events.send(Err(Error::ModelLoad {
                path: self.path.clone(),
                reason: "its inference thread has stopped".into(),
            }));
        }
        let events = tokio_stream_from(rx);
        let cancelled = cancel.cancelled_owned();
        events.take_until(cancelled).boxed()
    }
}

/// The same failure for the next request waiting (errors are not `Clone`: most carry sources).
fn again(e: &Error) -> Error {
    match e {
        Error::ModelMissing { name, path } => Error::ModelMissing { name: name.clone(), path: path.clone() },
        Error::ModelLoad { path, reason } => Error::ModelLoad { path: path.clone(), reason: reason.clone() },
        other => Error::ModelLoad { path: PathBuf::new(), reason: other.to_string() },
    }
}

fn tokio_stream_from(mut rx: mpsc::UnboundedReceiver<Result<ChatEvent>>) -> ChatStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// A [`Gateway`] over a shared [`LocalModel`], under a profile's name.
pub struct LocalGateway {
    /// The profile's name, as chats and jobs record it.
    pub profile: String,
    /// The loaded model, shared by every profile that uses it.
    pub model: Arc<LocalModel>,
}

impl Gateway for LocalGateway {
    fn name(&self) -> &str {
        &self.profile
    }

    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> ChatStream {
        self.model.stream(request, cancel)
    }

    fn check(&self) -> futures::future::BoxFuture<'static, Result<String>> {
        let model = self.model.name.clone();
        let path = self.model.path.clone();
        Box::pin(async move {
            match std::fs::metadata(&path) {
                Ok(m) => Ok(format!("built-in model {model} ({} MB) is ready", m.len() / 1_000_000)),
                Err(_) => Err(Error::ModelMissing { name: model, path }),
            }
        })
    }
}

/// One running reply.
struct Seq {
    slot: i32,
    req: Request,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens already decoded.
    fed: usize,
    /// Position of the next token in this sequence.
    pos: i32,
    /// The last sampled token, to decode next step.
    next: Option<LlamaToken>,
    /// Where this sequence's logits are in the current batch.
    logits_at: Option<i32>,
    sampler: LlamaSampler,
    generated: u32,
    max_tokens: u32,
    /// Bytes of a character split across tokens, held until it is whole.
    pending: Vec<u8>,
}

impl Seq {
    fn gone(&self) -> bool {
        self.req.cancel.is_cancelled() || self.req.events.is_closed()
    }

    fn send(&self, event: ChatEvent) {
        let _ = self.req.events.send(Ok(event));
    }

    /// Append a token's bytes; send whatever now forms whole characters.
    fn push_piece(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let text = take_whole_chars(&mut self.pending);
        if !text.is_empty() {
            self.send(ChatEvent::Delta { text });
        }
    }

    fn finish(&mut self, reason: &str) {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            self.send(ChatEvent::Delta { text: rest });
        }
        self.send(ChatEvent::Usage { prompt_tokens: self.prompt.len() as u64, completion_tokens: self.generated as u64 });
        self.send(ChatEvent::Done { finish_reason: Some(reason.to_owned()) });
    }
}

/// The longest prefix of `bytes` that is whole UTF-8 characters, removed from `bytes`. Invalid
/// bytes (not just incomplete ones) are replaced rather than held forever.
pub(crate) fn take_whole_chars(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.to_owned();
            bytes.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            // Incomplete character at the end: keep it for the next token.
            let rest = bytes.split_off(e.valid_up_to());
            String::from_utf8(std::mem::replace(bytes, rest)).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(&std::mem::take(bytes)).into_owned(),
    }
}

/// The inference thread: load, then serve until every [`LocalModel`] handle is gone.
fn serve(name: &str, path: &Path, config: &LocalConfig, rx: &std_mpsc::Receiver<Request>) -> Result<()> {
    let backend = backend()?;
    let load_error = |reason: String| Error::ModelLoad { path: path.to_owned(), reason };
    if !path.exists() {
        return Err(Error::ModelMissing { name: name.to_owned(), path: path.to_owned() });
    }
    let started = std::time::Instant::now();
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| load_error(format!("llama.cpp could not load it ({e}); is it a GGUF model file?")))?;
    let template = model.chat_template(None).map_err(|_| {
        load_error("it has no chat template, so it is not a chat model; use an instruct/chat GGUF".into())
    })?;
    let per_slot = CONTEXT_PER_SLOT.min(model.n_ctx_train().max(256));
    let threads = config.threads as i32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(per_slot * SLOTS))
        .with_n_seq_max(SLOTS)
        // One cache region per sequence: one long conversation cannot take another's room.
        .with_kv_unified(false)
        .with_n_batch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx =
        model.new_context(backend, params).map_err(|e| load_error(format!("no room for its context ({e})")))?;
    tracing::info!(model = %name, ms = started.elapsed().as_millis() as u64, threads, "local model loaded");
    let mut runner = Runner { name, model: &model, template, per_slot, free: (0..SLOTS as i32).rev().collect(), active: Vec::new() };
    runner.run(&mut ctx, rx);
    Ok(())
}

struct Runner<'m> {
    name: &'m str,
    model: &'m LlamaModel,
    template: LlamaChatTemplate,
    per_slot: u32,
    free: Vec<i32>,
    active: Vec<Seq>,
}

impl<'m> Runner<'m> {
    fn run(&mut self, ctx: &mut LlamaContext<'m>, rx: &std_mpsc::Receiver<Request>) {
        let mut batch = LlamaBatch::new(512, SLOTS as i32);
        loop {
            // Admit waiting requests into free slots; sleep on the channel when idle.
            while !self.free.is_empty() {
                let req = if self.active.is_empty() {
                    match rx.recv() {
                        Ok(r) => r,
                        Err(_) => return, // every handle dropped
                    }
                } else {
                    match rx.try_recv() {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                };
                self.admit(req);
            }
            self.release(ctx, |s| s.gone());
            if self.active.is_empty() {
                continue;
            }
            self.fill(&mut batch);
            if batch.n_tokens() == 0 {
                continue;
            }
            if let Err(e) = ctx.decode(&mut batch) {
                let message = format!("llama.cpp failed to decode ({e})");
                for seq in &self.active {
                    let _ = seq.req.events.send(Err(Error::GatewayReplyError { gateway: self.name.to_owned(), message: message.clone() }));
                }
                self.release(ctx, |_| true);
                continue;
            }
            self.sample(ctx);
            self.release(ctx, |s| s.next.is_none() && s.fed == s.prompt.len());
        }
    }

    /// Template and tokenize a request, refuse it if it cannot fit, and give it a slot.
    fn admit(&mut self, req: Request) {
        if req.cancel.is_cancelled() || req.events.is_closed() {
            return;
        }
        match self.prepare(&req) {
            Ok(prompt) => {
                let room = self.per_slot - prompt.len() as u32;
                let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).clamp(1, room);
                let sampler = match req.temperature {
                    Some(t) if t > 0.0 => LlamaSampler::chain_simple([
                        LlamaSampler::top_k(40),
                        LlamaSampler::top_p(0.95, 1),
                        LlamaSampler::temp(t),
                        LlamaSampler::dist(fastrand::u32(..)),
                    ]),
                    // Unset or zero: greedy, so the same question gets the same answer.
                    _ => LlamaSampler::greedy(),
                };
                let slot = self.free.pop().expect("admit is only called with a free slot");
                self.active.push(Seq {
                    slot,
                    req,
                    prompt,
                    fed: 0,
                    pos: 0,
                    next: None,
                    logits_at: None,
                    sampler,
                    generated: 0,
                    max_tokens,
                    pending: Vec::new(),
                });
            }
            Err(e) => {
                let _ = req.events.send(Err(e));
            }
        }
    }

    fn prepare(&self, req: &Request) -> Result<Vec<LlamaToken>> {
        let invalid = |m: String| Error::GatewayInvalid(m);
        let mut chat = Vec::with_capacity(req.messages.len());
        for m in &req.messages {
            // Tool results go back as user text: small local models have no tool role.
            let role = match m.role {
                Role::Tool => "user",
                r => r.as_str(),
            };
            chat.push(
                LlamaChatMessage::new(role.to_owned(), m.content.clone())
                    .map_err(|_| invalid("a message contains a NUL character".into()))?,
            );
        }
        let text = self
            .model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| invalid(format!("the model's chat template failed ({e})")))?;
        let tokens = self.model.vocab().tokenize(text.as_bytes(), true, true);
        // Leave room for at least a short answer.
        let limit = self.per_slot.saturating_sub(16);
        if tokens.is_empty() || tokens.len() as u32 > limit {
            return Err(Error::ContextFull { model: self.name.to_owned(), tokens: tokens.len() as u32, limit: self.per_slot });
        }
        Ok(tokens)
    }

    /// One token for each replying sequence, then prompt chunks for new ones.
    fn fill(&mut self, batch: &mut LlamaBatch) {
        batch.clear();
        let mut room = 512usize;
        for seq in &mut self.active {
            if let Some(t) = seq.next.take() {
                batch.add(t, seq.pos, &[seq.slot], true).expect("batch sized for every slot");
                seq.logits_at = Some(batch.n_tokens() - 1);
                seq.pos += 1;
                room -= 1;
            }
        }
        for seq in &mut self.active {
            let left = seq.prompt.len() - seq.fed;
            let n = left.min(PREFILL_CHUNK).min(room);
            for _ in 0..n {
                let last = seq.fed + 1 == seq.prompt.len();
                batch.add(seq.prompt[seq.fed], seq.pos, &[seq.slot], last).expect("batch has room");
                if last {
                    seq.logits_at = Some(batch.n_tokens() - 1);
                }
                seq.fed += 1;
                seq.pos += 1;
            }
            room -= n;
        }
    }

    fn sample(&mut self, ctx: &LlamaContext<'m>) {
        let vocab = self.model.vocab();
        let mut piece = Vec::with_capacity(16);
        for seq in &mut self.active {
            let Some(at) = seq.logits_at.take() else { continue };
            let token = seq.sampler.sample(ctx, at);
            if vocab.is_eog(token) {
                seq.finish("stop");
                continue;
            }
            seq.generated += 1;
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            seq.push_piece(&piece);
            if seq.generated >= seq.max_tokens || seq.pos as u32 >= self.per_slot {
                // Out of reply budget or out of context: the reply ends here, and says why.
                seq.finish("length");
                continue;
            }
            seq.next = Some(token);
        }
    }

    /// Free the slots of sequences that match (finished, cancelled, failed).
    fn release(&mut self, ctx: &mut LlamaContext<'m>, done: impl Fn(&Seq) -> bool) {
        let mut i = 0;
        while i < self.active.len() {
            if done(&self.active[i]) {
                let seq = self.active.swap_remove(i);
                let _ = ctx.clear_kv_cache_seq(Some(seq.slot as u32), None, None);
                self.free.push(seq.slot);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::take_whole_chars;

    #[test]
    fn characters_split_across_tokens_are_sent_whole() {
        // "é" is two bytes and "🐉" four; tokens can end anywhere inside them.
        let bytes = "é🐉!".as_bytes();
        for cut in 0..=bytes.len() {
            let mut pending = bytes[..cut].to_vec();
            let mut text = take_whole_chars(&mut pending);
            pending.extend_from_slice(&bytes[cut..]);
            text.push_str(&take_whole_chars(&mut pending));
            assert_eq!(text, "é🐉!", "cut at {cut}");
            assert!(pending.is_empty());
        }
        // Bytes that can never become a character are replaced, not held forever.
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_whole_chars(&mut bad), "a\u{fffd}b");
        assert!(bad.is_empty());
    }
}
