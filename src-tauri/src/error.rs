//! The one error shape every command returns over IPC: the engine's `{code, message, data?}`.
//! The UI branches on `code` (the engine's stable codes), never on the sentence.

use gatehouse_engine::ErrorBody;

/// A command's error, serialised as [`ErrorBody`].
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Failure(pub ErrorBody);

impl From<gatehouse_engine::Error> for Failure {
    fn from(e: gatehouse_engine::Error) -> Failure {
        Failure(ErrorBody::from(&e))
    }
}

impl Failure {
    /// Input the UI should not have sent (an empty title, a link that is not http(s)).
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure(ErrorBody { code: "app.invalid".into(), message: message.into(), hint: None, data: None })
    }
}

/// What every command returns.
pub type Result<T> = std::result::Result<T, Failure>;
