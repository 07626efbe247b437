//! Runtime glue: everything monoio-specific the rest of the data plane touches.
//!
//! Owning this in one small module keeps a runtime swap (compio is the planned alternative)
//! a local change. It builds a shard's runtime with an explicit driver choice: io_uring first,
//! and on a probe *or build* error (old kernel, seccomp, `io_uring_disabled`, low memlock) the
//! epoll driver, with the reason and the memlock limit logged. monoio's own `FusionDriver`
//! only probes and does not recover from a failed build, hence our own fallback.
//!
//! # Key Components
//! - [`DriverKind`] and [`run_on_driver`]: build and run a shard's runtime.
//! - [`clock`]: the shard's latest clock reading, so a request reads the OS clock once on
//!   its way in and once when its backend answers.
//! - [`bufs`]: the shard's free list of byte buffers a call fills and empties once each.
//! - [`mailbox`]: the lock-free, waking queue that carries messages between threads.
//! - [`io`]: small helpers over rent-style I/O (read into spare capacity, write all, write
//!   under a stall timeout).
//! - [`feed`]: the byte-bounded queue toward an SSE writer.
//! - [`fair`]: loops over outside input give way to the shard's other tasks.
//! - [`flag`]: a set-once flag tasks wait on without polling.
//! - [`next`]: the next item of a stream (channels, feeds), the one `poll_fn` for it.
//! - [`uring_setup`]: the io_uring setup flags of a shard's ring, dropped one by one when the
//!   kernel refuses them.

pub mod bufs;
pub mod clock;
pub mod contain;
pub mod fair;
pub mod feed;
pub mod flag;
pub mod io;
pub mod mailbox;
pub mod uring_setup;

use std::future::Future;
use std::io as stdio;

/// The next item of `stream`, `None` once it has ended: what `StreamExt::next` would be,
/// without pulling in futures-util for one line.
pub async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// A runtime with timers for unit tests: the epoll-style legacy driver, which needs no ring.
#[cfg(test)]
pub(crate) fn test_runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("a test runtime")
}

/// Stack of every thread that reads JSON from outside (shards, health prober, JWKS fetcher).
/// JSON nesting is bounded before any recursive parser runs (`server.max_json_depth`, at
/// most 1,024 levels), but sonic-rs' validating parser uses ~16 KiB of stack per level in an
/// unoptimised build (a few hundred bytes optimised), so 2 MiB, the default, is not enough
/// for a debug build at the bound. Untouched stack is only reserved, not resident.
pub const THREAD_STACK_BYTES: usize = 32 << 20;

/// Which I/O driver the shards run on.
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, else epoll (the reason is logged).
    #[default]
    Auto,
    /// io_uring only; startup fails if it cannot be built.
    Uring,
    /// epoll only.
    Epoll,
}

/// The driver a shard actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// io_uring.
    Uring,
    /// epoll (monoio's legacy driver).
    Epoll,
}

impl DriverKind {
    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Uring => "io_uring",
            DriverKind::Epoll => "epoll",
        }
    }
}

/// The soft RLIMIT_MEMLOCK in bytes (`None` = unlimited), logged beside the driver choice.
pub fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(lim.rlim_cur)
    }
}

/// Human form of [`memlock_limit`].
pub fn memlock_text() -> String {
    match memlock_limit() {
        None => "unlimited".into(),
        Some(b) => format!("{} KiB", b / 1024),
    }
}

/// What [`run_on_driver`] built, told to its `on_chosen` before the future starts.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The driver actually used.
    pub kind: DriverKind,
    /// Why `Auto` fell back to epoll, when it did.
    pub fallback: Option<String>,
    /// The io_uring setup flags kept and refused (empty on epoll).
    pub uring: uring_setup::Settled,
}

/// Builds a runtime on the requested driver and runs `make()` on it to completion.
///
/// `on_chosen` is called with the driver actually used before the future starts, and with the
/// fallback reason when `Auto` had to fall back to epoll. `Uring` never falls back: the caller
/// asked for it explicitly, so a failure is returned. The io_uring ring is built with
/// `uring_flags`, less any the kernel refuses ([`uring_setup::build`]).
pub fn run_on_driver<F, Fut>(
    choice: DriverChoice,
    entries: u32,
    uring_flags: &[uring_setup::UringFlag],
    on_chosen: impl FnOnce(Chosen),
    make: F,
) -> stdio::Result<Fut::Output>
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    if choice != DriverChoice::Epoll {
        let built = if monoio::utils::detect_uring() {
            uring_setup::build(uring_flags, |flags| {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .with_entries(entries)
                    .uring_builder(uring_setup::builder(flags))
                    .enable_timer()
                    .build()
            })
        } else {
            Err(stdio::Error::new(
                stdio::ErrorKind::Unsupported,
                "io_uring probe failed (kernel too old, io_uring_disabled, or seccomp)",
            ))
        };
        match built {
            Ok((mut rt, uring)) => {
                on_chosen(Chosen {
                    kind: DriverKind::Uring,
                    fallback: None,
                    uring,
                });
                fair::runtime_started(DriverKind::Uring);
                let out = rt.block_on(make());
                fair::runtime_ended();
                return Ok(out);
            }
            Err(e) if choice == DriverChoice::Auto => {
                let reason = format!("{e} (memlock limit {})", memlock_text());
                on_chosen(Chosen {
                    kind: DriverKind::Epoll,
                    fallback: Some(reason),
                    uring: Default::default(),
                });
            }
            Err(e) => {
                return Err(stdio::Error::new(
                    e.kind(),
                    format!(
                        "io_uring runtime could not be built: {e} (memlock limit {}); use --driver epoll or auto",
                        memlock_text()
                    ),
                ))
            }
        }
    } else {
        on_chosen(Chosen {
            kind: DriverKind::Epoll,
            fallback: None,
            uring: Default::default(),
        });
    }
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()?;
    fair::runtime_started(DriverKind::Epoll);
    let out = rt.block_on(make());
    fair::runtime_ended();
    Ok(out)
}

/// Pins the calling thread to one CPU; failures are reported, not fatal.
pub fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    monoio::utils::bind_to_cpu_set([cpu]).map_err(|e| format!("{e:?}"))
}
