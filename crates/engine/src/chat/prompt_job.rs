//! The `prompt` job kind: the pool sends a prompt to a gateway and streams the reply into the
//! job's output, a line at a time as lines complete.

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, JobError, Result};
use crate::gateway::{ChatEvent, ChatMessage, ChatRequest, Gateways, Role};
use crate::pool::job::Stream;
use crate::pool::kind::{BoxFuture, JobKind, JobRun, Outcome};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
/// What a `prompt` job asks: one message to a gateway, its reply streamed into the job's output.
pub struct PromptSpec {
    /// What to say to the model: the whole prompt, sent as one user message.
    pub text: String,
    /// A gateway profile; `None` = the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The model; `None`: the profile's.
    pub model: Option<String>,
}

pub(crate) struct PromptJob {
    pub gateways: Arc<Gateways>,
}

impl JobKind for PromptJob {
    fn name(&self) -> &'static str {
        "prompt"
    }

    fn validate(&self, spec: &serde_json::Value) -> Result<()> {
        let spec: PromptSpec = serde_json::from_value(spec.clone())
            .map_err(|e| Error::JobInvalid(format!("not a valid prompt job: {e}")))?;
        if spec.text.trim().is_empty() {
            return Err(Error::JobInvalid("the prompt is empty".into()));
        }
        Ok(())
    }

    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        let gateways = self.gateways.clone();
        Box::pin(async move {
            match prompt(&gateways, &run).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Failed { exit_code: None, error: JobError::new(e.code(), e.to_string()) },
            }
        })
    }
}

async fn prompt(gateways: &Gateways, run: &JobRun) -> Result<Outcome> {
    let spec: PromptSpec =
        serde_json::from_value(run.spec.clone()).map_err(|e| Error::JobInvalid(format!("not a valid prompt job: {e}")))?;
    let (_, gateway) = gateways.open(spec.gateway.as_deref()).await?;
    let request = ChatRequest {
        model: spec.model,
        messages: vec![ChatMessage::new(Role::User, spec.text)],
        session: Some(format!("gatehouse-job-{}", run.id)),
        ..ChatRequest::default()
    };
    let mut stream = gateway.stream(request, run.cancel.clone());
    let mut line = String::new();
    let end = loop {
        match stream.next().await {
            Some(Ok(ChatEvent::Delta { text })) => {
                line.push_str(&text);
                while let Some(i) = line.find('\n') {
                    let rest = line.split_off(i + 1);
                    line.pop();
                    run.line(Stream::Stdout, std::mem::replace(&mut line, rest)).await;
                }
            }
            Some(Ok(ChatEvent::Done { .. })) => break Ok(()),
            Some(Ok(ChatEvent::ToolActivity { title, status, .. })) => {
                run.line(Stream::Stderr, format!("[tool] {title} — {status}, run by the gateway")).await;
            }
            Some(Ok(ChatEvent::Usage { .. } | ChatEvent::ToolCalls { .. })) => {}
            Some(Err(e)) => break Err(e),
            None => break Err(Error::ShuttingDown),
        }
    };
    if !line.is_empty() {
        run.line(Stream::Stdout, line).await;
    }
    Ok(match end {
        Ok(()) => Outcome::Succeeded { exit_code: None },
        Err(_) if run.cancel.is_cancelled() => Outcome::Stopped { exit_code: None },
        Err(e) => Outcome::Failed { exit_code: None, error: JobError::new(e.code(), e.to_string()) },
    })
}
