//! A call's time limits: the movable deadline that progress pushes back (up to the server's
//! `max_timeout_ms`), shared with the caller and with an owner shard the call may cross to,
//! and the client's cancellation signal. Kept apart from the transports, which all wait on
//! them the same way.

use std::time::Duration;

use crate::upstream::link::{CancelRx, Deadline};

/// A deadline `after` from now (a new call link: `link.rs`).
pub fn deadline_in(after: Duration) -> Deadline {
    Deadline::at(std::time::Instant::now() + after)
}

/// Moves `d` to `after` from now, but never past `cap`.
pub fn extend_deadline(d: &Deadline, after: Duration, cap: std::time::Instant) {
    d.push_back((std::time::Instant::now() + after).min(cap));
}

/// Runs `fut` until it ends or the call's deadline passes (`Err(())`): a fixed `timeout`, or
/// the movable deadline re-read each time it is reached.
pub async fn within<F: std::future::Future>(
    opts_timeout: Duration,
    deadline: Option<&Deadline>,
    fut: F,
) -> Result<F::Output, ()> {
    let Some(d) = deadline else {
        return monoio::time::timeout(opts_timeout, fut)
            .await
            .map_err(|_| ());
    };
    let mut fut = std::pin::pin!(fut);
    loop {
        let at = d.when();
        let now = std::time::Instant::now();
        if now >= at {
            return Err(());
        }
        match monoio::time::timeout(at - now, fut.as_mut()).await {
            Ok(r) => return Ok(r),
            Err(_) => continue,
        }
    }
}

/// Resolves when the client cancels (`cancel` fires); never when there is no signal or its
/// sender was dropped (the call finished normally).
pub async fn cancelled(cancel: Option<CancelRx>) {
    match cancel {
        Some(rx) => std::future::poll_fn(|cx| rx.poll_cancelled(cx)).await,
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
    }

    #[test]
    fn progress_pushes_the_deadline_back_up_to_the_cap() {
        rt().block_on(async {
            let start = std::time::Instant::now();
            let d = deadline_in(Duration::from_millis(150));
            let cap = start + Duration::from_millis(400);
            let d2 = d.clone();
            // "Progress" every 100 ms keeps a 300 ms call alive past its 150 ms timeout.
            monoio::spawn(async move {
                for _ in 0..3 {
                    monoio::time::sleep(Duration::from_millis(100)).await;
                    extend_deadline(&d2, Duration::from_millis(150), cap);
                }
            });
            let r = within(
                Duration::from_millis(150),
                Some(&d),
                monoio::time::sleep(Duration::from_millis(300)),
            )
            .await;
            assert!(r.is_ok(), "extended by progress");
            // Without progress the same deadline expires; and the cap always wins.
            let d = deadline_in(Duration::from_millis(100));
            let r = within(
                Duration::from_millis(100),
                Some(&d),
                monoio::time::sleep(Duration::from_millis(300)),
            )
            .await;
            assert!(r.is_err());
            let d = deadline_in(Duration::from_millis(100));
            let cap = std::time::Instant::now() + Duration::from_millis(150);
            extend_deadline(&d, Duration::from_secs(10), cap);
            let t = std::time::Instant::now();
            let r = within(
                Duration::from_millis(100),
                Some(&d),
                monoio::time::sleep(Duration::from_secs(2)),
            )
            .await;
            assert!(
                r.is_err() && t.elapsed() < Duration::from_secs(1),
                "the cap bounds every extension"
            );
        });
    }
}
