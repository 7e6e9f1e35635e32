//! Backup and restore with the real SQLite: a backup taken while three workers and a chat
//! write is one consistent moment and restores to exactly what it holds; a restore refuses
//! while Gatehouse runs, refuses a bad file without touching the data, and keeps the data it
//! replaces. Chat replies come from testkit's raw-bytes server (a mock).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_engine::pool::kind::BoxFuture;
use gatehouse_engine::{
    Engine, EngineOptions, JobFilter, JobKind, JobRun, NewJob, Outcome, PoolConfig, Profile, ReplyEvent, SendOptions,
    Stream,
};
use gatehouse_testkit::{delta, serve, sse_head, Step};
use tokio_util::sync::CancellationToken;

/// Writes a few output lines, then succeeds: every job is several writes.
struct Chatty;
impl JobKind for Chatty {
    fn name(&self) -> &'static str {
        "chatty"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        Box::pin(async move {
            for i in 0..3 {
                run.line(Stream::Stdout, format!("line {i} of job {}", run.id)).await;
            }
            Outcome::Succeeded { exit_code: Some(0) }
        })
    }
}

async fn open(dir: &Path) -> Engine {
    let mut options = EngineOptions::new(dir);
    options.extra_kinds.push(Arc::new(Chatty));
    Engine::open(options).await.unwrap()
}

async fn say(engine: &Engine, conversation: Option<i64>, text: &str) -> i64 {
    let options = SendOptions { conversation, ..Default::default() };
    let mut reply = engine.send(text.into(), options, CancellationToken::new()).await.unwrap();
    while let Some(event) = reply.events.recv().await {
        if let ReplyEvent::Finished { .. } = event {
            break;
        }
    }
    reply.conversation_id
}

/// What a database holds, read with plain SQL: (job id, state, output lines) and
/// (conversation id, title, message texts).
type Contents = (Vec<(i64, String, i64)>, Vec<(i64, String, Vec<String>)>);

fn contents(db: &Path) -> Contents {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let jobs = c
        .prepare("SELECT id, state, (SELECT count(*) FROM job_output o WHERE o.job_id = j.id) FROM jobs j ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let conversations: Vec<(i64, String)> = c
        .prepare("SELECT id, title FROM conversations ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let conversations = conversations
        .into_iter()
        .map(|(id, title)| {
            let texts = c
                .prepare("SELECT text FROM messages WHERE conversation_id = ?1 ORDER BY id")
                .unwrap()
                .query_map([id], |r| r.get(0))
                .unwrap()
                .collect::<Result<Vec<String>, _>>()
                .unwrap();
            (id, title, texts)
        })
        .collect();
    (jobs, conversations)
}

/// The same, read through a restored engine's own API.
async fn contents_of(engine: &Engine) -> Contents {
    let mut jobs = Vec::new();
    for job in engine.jobs(&JobFilter { state: None, limit: None }).await.unwrap() {
        let lines = engine.output(job.id, 0, 100_000).await.unwrap().len() as i64;
        jobs.push((job.id, job.state.to_string(), lines));
    }
    jobs.sort();
    let mut conversations = Vec::new();
    for c in engine.conversations(10_000).await.unwrap() {
        let (conversation, messages) = engine.conversation(c.id).await.unwrap();
        conversations.push((conversation.id, conversation.title, messages.into_iter().map(|m| m.text).collect()));
    }
    conversations.sort();
    (jobs, conversations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_three_workers_and_a_chat_write_restores_to_exactly_what_it_holds() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta("noted")).into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    engine.add_gateway(Profile::openai("raw", &server.url, Some("m"))).await.unwrap();
    let pool = engine.start_pool(PoolConfig { workers: 3, ..PoolConfig::default() }).await.unwrap();

    // The load: jobs submitted and run by three workers, and a chat, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                engine.submit(NewJob::new("chatty", serde_json::Value::Null)).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let (turn, mut turns) = tokio::sync::mpsc::unbounded_channel();
    let chatter = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conversation = None;
            let mut n: usize = 0;
            while !stop.load(Ordering::Relaxed) {
                conversation = Some(say(&engine, if n % 5 == 0 { None } else { conversation }, &format!("message {n}")).await);
                n += 1;
                let _ = turn.send(());
            }
            n
        })
    };
    // Some of each before the backup, and more after it.
    let mut jobs = engine.subscribe();
    let mut finished = 0;
    while finished < 50 {
        if let Ok(gatehouse_engine::JobEvent::State { state, .. }) = jobs.recv().await {
            finished += state.is_finished() as usize;
        }
    }
    let elsewhere = tempfile::tempdir().unwrap();
    for _ in 0..7 {
        turns.recv().await.unwrap();
    }
    let backup_file = elsewhere.path().join("backup-under-load.db");
    let copied = engine.backup(backup_file.clone()).await.unwrap();
    let mut more = 0;
    while more < 50 {
        if let Ok(gatehouse_engine::JobEvent::State { state, .. }) = jobs.recv().await {
            more += state.is_finished() as usize;
        }
    }
    for _ in 0..7 {
        turns.recv().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (submitted, said) = (submitter.await.unwrap(), chatter.await.unwrap());
    pool.shutdown(Duration::from_secs(5)).await;
    engine.close().await;

    let held = contents(&backup_file);
    assert_eq!((copied.jobs, copied.conversations), (held.0.len() as i64, held.1.len() as i64));
    assert!(copied.jobs >= 50 && copied.jobs < submitted as i64, "a moment in the middle: {} of {submitted}", copied.jobs);
    assert!(copied.conversations >= 2 && (copied.conversations as usize) < said.div_ceil(5), "{} of {said} turns", copied.conversations);
    // One moment: no conversation holds a question without its stored turn, no job's output
    // is ahead of its row (each finished job has all its three lines).
    for (id, state, lines) in &held.0 {
        if state == "succeeded" {
            assert_eq!(*lines, 3, "job {id}");
        }
    }

    // Restored into another data directory: the same conversations and jobs, through the API.
    let other = tempfile::tempdir().unwrap();
    let restored = gatehouse_engine::restore(other.path(), &backup_file, 0).unwrap();
    assert_eq!(restored.previous, None);
    let engine = open(other.path()).await;
    assert_eq!(contents_of(&engine).await, held);
    engine.close().await;
}

#[tokio::test]
async fn a_restore_refuses_while_gatehouse_runs_refuses_a_bad_file_and_keeps_the_data_it_replaces() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta("noted")).into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    engine.add_gateway(Profile::openai("raw", &server.url, Some("m"))).await.unwrap();
    say(&engine, None, "kept in the backup").await;
    let backup_file = dir.path().join("backup.db");
    engine.backup(backup_file.clone()).await.unwrap();
    assert_eq!(engine.backup(backup_file.clone()).await.unwrap_err().code(), "store.backup_failed", "no overwrite");
    say(&engine, None, "said after the backup").await;

    // Running: refused, nothing touched.
    let error = gatehouse_engine::restore(dir.path(), &backup_file, 0).unwrap_err();
    assert_eq!(error.code(), "store.in_use", "{error}");
    engine.close().await;

    // A file that is not a backup, and one from a newer Gatehouse: refused, data untouched.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    assert_eq!(gatehouse_engine::restore(dir.path(), &garbage, 0).unwrap_err().code(), "store.backup_failed");
    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup_file, &newer).unwrap();
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 9999).unwrap();
    assert_eq!(gatehouse_engine::restore(dir.path(), &newer, 0).unwrap_err().code(), "store.newer_schema");
    let before = contents(&dir.path().join("gatehouse.db"));
    assert_eq!(before.1.len(), 2);

    // The real thing: the backup's data in place, the replaced data kept as a snapshot.
    let restored = gatehouse_engine::restore(dir.path(), &backup_file, 1_700_000_000_000).unwrap();
    let previous = restored.previous.expect("the replaced data is kept");
    assert!(previous.starts_with(dir.path().join("snapshots")), "{previous:?}");
    assert_eq!(contents(&previous), before);
    let engine = open(dir.path()).await;
    let titles: Vec<String> = engine.conversations(10).await.unwrap().into_iter().map(|c| c.title).collect();
    assert_eq!(titles, vec!["kept in the backup"]);
    engine.close().await;
}
