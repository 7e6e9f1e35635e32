//! Every write the pool makes, one file each. Each is a [`WriteOp`](crate::store::WriteOp) run
//! by the store's single writer inside a batch transaction, so each checks its preconditions
//! before writing and can be re-run if its batch is retried.

pub(crate) mod append_output;
pub(crate) mod cancel;
pub(crate) mod claim;
pub(crate) mod complete;
pub(crate) mod heartbeat;
pub(crate) mod prune;
pub(crate) mod register;
pub(crate) mod rescue;
pub(crate) mod retry;
pub(crate) mod set_pgid;
pub(crate) mod submit;
