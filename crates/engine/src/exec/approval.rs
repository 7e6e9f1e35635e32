//! Pending approvals: when a rule says ask and the person is elsewhere (a window of the desktop
//! app, another terminal), the engine publishes an [`ApprovalRequest`] and waits for an answer
//! — allow once, allow for a while, or deny — until the request expires, which counts as no.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use super::{Approval, Approver};
use crate::clock::{Millis, SharedClock};
use crate::error::{Error, Result};
use crate::pool::kind::BoxFuture;

/// A command waiting for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    pub id: u64,
    pub command: String,
    /// Why it was asked (the rule, or "no rule covers this command").
    pub reason: String,
    pub expires_at: Millis,
}

/// Requests buffered per subscriber; a subscriber that falls behind re-reads
/// [`crate::Engine::pending_approvals`].
const EVENTS: usize = 64;

pub(crate) struct Pending {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, (ApprovalRequest, oneshot::Sender<Approval>)>>,
    events: broadcast::Sender<ApprovalRequest>,
    clock: SharedClock,
}

impl Pending {
    pub(crate) fn new(clock: SharedClock) -> Arc<Pending> {
        Arc::new(Pending {
            next: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
            events: broadcast::channel(EVENTS).0,
            clock,
        })
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ApprovalRequest> {
        self.events.subscribe()
    }

    pub(crate) fn list(&self) -> Vec<ApprovalRequest> {
        let mut list: Vec<_> = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).values().map(|(r, _)| r.clone()).collect();
        list.sort_by_key(|r| r.id);
        list
    }

    pub(crate) fn answer(&self, id: u64, answer: Approval) -> Result<()> {
        let entry = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match entry.map(|(_, reply)| reply.send(answer)) {
            Some(Ok(())) => Ok(()),
            _ => Err(Error::ExecInvalid(format!("there is no pending approval {id} (it was answered or it expired)"))),
        }
    }
}

/// Asks through [`Pending`], waiting up to `wait` for an answer.
pub(crate) struct EventApprover {
    pub pending: Arc<Pending>,
    pub wait: Duration,
}

impl Approver for EventApprover {
    fn approve(&self, command: &str, reason: &str) -> BoxFuture<Approval> {
        let pending = self.pending.clone();
        let wait = self.wait;
        let id = pending.next.fetch_add(1, Ordering::Relaxed);
        let request = ApprovalRequest {
            id,
            command: command.to_owned(),
            reason: reason.to_owned(),
            expires_at: pending.clock.now() + wait.as_millis() as i64,
        };
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            pending.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (request.clone(), tx));
            // However this ends — answered, expired, or the asker gone — the request is withdrawn.
            let _withdraw = Withdraw { pending: pending.clone(), id };
            let _ = pending.events.send(request);
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(answer)) => answer,
                _ => Approval::Expired,
            }
        })
    }
}

struct Withdraw {
    pending: Arc<Pending>,
    id: u64,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.pending.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}
