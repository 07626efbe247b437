//! A call's time limits: the movable deadline that progress pushes back (up to the server's
//! `max_timeout_ms`), shared with the caller and with an owner shard the call may cross to,
//! and the client's cancellation signal. Kept apart from the transports, which all wait on
//! them the same way.

use std::time::Duration;

/// A call's movable deadline, shared with the caller (`Send`: it may cross to an owner
/// shard with the call). Nanoseconds since [`epoch`].
pub type Deadline = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// The process-wide origin of [`Deadline`] values.
pub fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// A deadline `after` from now.
pub fn deadline_in(after: Duration) -> Deadline {
    let at = (std::time::Instant::now() + after)
        .duration_since(epoch())
        .as_nanos() as u64;
    std::sync::Arc::new(std::sync::atomic::AtomicU64::new(at))
}

/// Moves `d` to `after` from now, but never past `cap`.
pub fn extend_deadline(d: &Deadline, after: Duration, cap: std::time::Instant) {
    let want = (std::time::Instant::now() + after).min(cap);
    let at = want.duration_since(epoch()).as_nanos() as u64;
    d.fetch_max(at, std::sync::atomic::Ordering::Relaxed);
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
        let at = epoch() + Duration::from_nanos(d.load(std::sync::atomic::Ordering::Relaxed));
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
pub async fn cancelled(cancel: Option<futures_channel::oneshot::Receiver<()>>) {
    let fired = match cancel {
        Some(rx) => rx.await.is_ok(),
        None => false,
    };
    if !fired {
        std::future::pending::<()>().await;
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
