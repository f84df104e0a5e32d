//! Panics, caught rather than lost: `catching` turns a panic inside a future into an
//! error (how `process` settles a delivery whatever happens), `panic_message` reads a
//! payload, and `log_task_end` reports a worker task that still panicked.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;
use tokio::task::JoinError;

/// `process` catches panics itself; this reports anything that still escaped a task.
pub(crate) fn log_task_end(ended: Result<(), JoinError>) {
    match ended {
        Ok(()) => {}
        Err(e) if e.is_panic() => {
            let panic = panic_message(&*e.into_panic());
            tracing::error!(%panic, "worker task panicked");
        }
        Err(e) => tracing::warn!(error = %e, "worker task did not finish"),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Runs `fut` to completion, turning a panic inside it into `Err(panic message)`.
pub(crate) async fn catching<F: Future>(fut: F) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let literal = std::panic::catch_unwind(|| panic!("literal")).unwrap_err();
        let formatted = std::panic::catch_unwind(|| panic!("formatted {}", 7)).unwrap_err();
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(&*literal), "literal");
        assert_eq!(panic_message(&*formatted), "formatted 7");
        assert_eq!(panic_message(&*other), "panic with a non-text payload");
    }

    #[tokio::test]
    async fn catching_turns_a_panic_into_an_error() {
        let ok = catching(async { 1 }).await;
        let caught = catching(async {
            tokio::task::yield_now().await;
            panic!("after a suspension")
        })
        .await;
        assert_eq!(ok, Ok(1));
        assert_eq!(caught, Err::<(), _>("after a suspension".to_owned()));
    }
}
