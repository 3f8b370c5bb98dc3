//! Use cases that must not stop half way when their caller does.
//!
//! The HTTP server drops a request's handler when the client goes away. For most endpoints
//! that is right: nothing is left half done that the client's retry would not redo. Some ends
//! are worse: a back-channel logout cut off after its `jti` was recorded leaves sessions alive
//! and refuses the provider's retry as a replay; a logout or an operator's revocation cut off
//! after the sessions were deleted leaves refresh tokens unrevoked at the provider, where no
//! retry can reach them (the sessions that held them are gone). Those handlers run their use
//! case through [`to_the_end`].

use std::future::Future;

use tracing::Instrument as _;

use crate::problem::Problem;

/// Runs `work` on a task of its own, in the request's span, and waits for it: when the caller
/// stops waiting (the client went away and the server dropped the handler), the work still
/// finishes. `what` names the work in the `500` answer should the task panic.
pub(crate) async fn to_the_end<T: Send + 'static>(
    what: &str,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, Problem> {
    tokio::spawn(work.in_current_span())
        .await
        .map_err(|err| Problem::internal(what, &err))
}
