//! The io_uring setup flags a shard's ring is built with, and the fallback when the kernel
//! refuses one.
//!
//! Every shard is the only thread that submits to its ring, so the kernel may skip the work
//! it does for rings shared between threads:
//! - `coop_taskrun` (5.19): a completion does not interrupt the shard with an IPI to run its
//!   task work; the work runs at the shard's next kernel entry (any system call), which a
//!   busy shard makes soon.
//! - `taskrun_flag` (5.19): with `coop_taskrun`, the kernel also marks the SQ ring when task
//!   work waits. monoio 0.2.4 never reads that mark, so it changes nothing measurable; it is
//!   accepted for completeness.
//! - `single_issuer` (6.0): the kernel may drop its submission locking. The ring is built
//!   on the shard thread that then runs it, and other threads only write the eventfd monoio
//!   wakes it with.
//! - `defer_taskrun` (6.1, needs `single_issuer`): completions are posted only when the shard
//!   enters the kernel *to wait* (`IORING_ENTER_GETEVENTS`). monoio 0.2.4 waits that way when
//!   it parks, but two of its paths only submit: a park that finds wake-ups from other threads
//!   queued, and a loop turn with tasks left over. While other shards keep waking a shard
//!   (hand-offs, stdio calls to a backend it owns), its own completions wait for a quiet
//!   turn: no hang (the wakes come from requests that wait on that shard), but tail latency.
//!   Not in the default for that reason.
//!
//! A kernel that does not know a flag fails the ring's setup with `EINVAL`. [`build`] then
//! drops the newest flag still asked for and tries again, and reports every flag it dropped,
//! so an old kernel runs with what it has and the log says what that was.

use std::io;

/// One io_uring setup flag (`server.uring_setup`).
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum UringFlag {
    /// `IORING_SETUP_COOP_TASKRUN`.
    CoopTaskrun,
    /// `IORING_SETUP_TASKRUN_FLAG` (only with `coop_taskrun` or `defer_taskrun`).
    TaskrunFlag,
    /// `IORING_SETUP_SINGLE_ISSUER`.
    SingleIssuer,
    /// `IORING_SETUP_DEFER_TASKRUN` (only with `single_issuer`).
    DeferTaskrun,
}

impl UringFlag {
    /// Every flag, oldest kernel first: the order in which [`build`] keeps them.
    pub const ALL: [UringFlag; 4] = [
        UringFlag::CoopTaskrun,
        UringFlag::TaskrunFlag,
        UringFlag::SingleIssuer,
        UringFlag::DeferTaskrun,
    ];

    /// The name used in the config and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            UringFlag::CoopTaskrun => "coop_taskrun",
            UringFlag::TaskrunFlag => "taskrun_flag",
            UringFlag::SingleIssuer => "single_issuer",
            UringFlag::DeferTaskrun => "defer_taskrun",
        }
    }

    fn rank(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Why a set of flags cannot be asked for at all, whatever the kernel (config validation).
pub fn check(flags: &[UringFlag]) -> Result<(), String> {
    let has = |f| flags.contains(&f);
    if has(UringFlag::DeferTaskrun) && !has(UringFlag::SingleIssuer) {
        return Err("defer_taskrun needs single_issuer".into());
    }
    if has(UringFlag::TaskrunFlag) && !has(UringFlag::CoopTaskrun) && !has(UringFlag::DeferTaskrun)
    {
        return Err("taskrun_flag needs coop_taskrun or defer_taskrun".into());
    }
    Ok(())
}

/// The io_uring builder asking for `flags`.
pub fn builder(flags: &[UringFlag]) -> io_uring::Builder {
    let mut b = io_uring::IoUring::builder();
    for f in flags {
        match f {
            UringFlag::CoopTaskrun => b.setup_coop_taskrun(),
            UringFlag::TaskrunFlag => b.setup_taskrun_flag(),
            UringFlag::SingleIssuer => b.setup_single_issuer(),
            UringFlag::DeferTaskrun => b.setup_defer_taskrun(),
        };
    }
    b
}

/// What [`build`] settled on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// The flags the ring was built with.
    pub kept: Vec<UringFlag>,
    /// The flags the kernel refused, with its error, newest first.
    pub dropped: Vec<(UringFlag, String)>,
}

impl Settled {
    /// `coop_taskrun,single_issuer` (or `none`), for the log.
    pub fn kept_text(&self) -> String {
        if self.kept.is_empty() {
            return "none".into();
        }
        let names: Vec<&str> = self.kept.iter().map(|f| f.as_str()).collect();
        names.join(",")
    }
}

/// Builds with `flags`, dropping the newest flag on each `EINVAL` (and the flags that need
/// it), until `try_build` succeeds or no flag is left; other errors end the attempts.
/// `try_build` gets the flags of each attempt.
pub fn build<T>(
    flags: &[UringFlag],
    mut try_build: impl FnMut(&[UringFlag]) -> io::Result<T>,
) -> io::Result<(T, Settled)> {
    let mut kept: Vec<UringFlag> = Vec::with_capacity(4);
    for f in flags {
        if !kept.contains(f) {
            kept.push(*f);
        }
    }
    kept.sort_by_key(|f| f.rank());
    let mut dropped = Vec::new();
    loop {
        match try_build(&kept) {
            Ok(t) => return Ok((t, Settled { kept, dropped })),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !kept.is_empty() => {
                let newest = kept.pop().expect("not empty");
                dropped.push((newest, e.to_string()));
                // A flag that needs the one dropped goes too.
                while check(&kept).is_err() {
                    let f = kept.pop().expect("check fails only with flags");
                    dropped.push((f, "needs a flag the kernel refused".into()));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UringFlag::*;

    fn einval() -> io::Error {
        io::Error::from_raw_os_error(libc::EINVAL)
    }

    #[test]
    fn a_kernel_that_knows_every_flag_keeps_them_all_once_each() {
        let (tries, s) = build(
            &[DeferTaskrun, SingleIssuer, CoopTaskrun, CoopTaskrun],
            |f| Ok::<_, io::Error>(f.len()),
        )
        .unwrap();
        assert_eq!(tries, 3);
        assert_eq!(s.kept, vec![CoopTaskrun, SingleIssuer, DeferTaskrun]);
        assert!(s.dropped.is_empty());
        assert_eq!(s.kept_text(), "coop_taskrun,single_issuer,defer_taskrun");
    }

    #[test]
    fn an_older_kernel_loses_the_newest_flags_and_says_which() {
        // A 6.0 kernel: knows single_issuer, not defer_taskrun.
        let (_, s) = build(&UringFlag::ALL, |f| {
            if f.contains(&DeferTaskrun) {
                Err(einval())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(s.kept, vec![CoopTaskrun, TaskrunFlag, SingleIssuer]);
        assert_eq!(s.dropped.len(), 1);
        assert_eq!(s.dropped[0].0, DeferTaskrun);
    }

    #[test]
    fn dropping_single_issuer_takes_defer_taskrun_with_it() {
        let mut seen = Vec::new();
        let (_, s) = build(&[SingleIssuer, DeferTaskrun], |f| {
            seen.push(f.to_vec());
            if f.contains(&SingleIssuer) || f.contains(&DeferTaskrun) {
                Err(einval())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert!(s.kept.is_empty());
        assert_eq!(s.kept_text(), "none");
        let names: Vec<_> = s.dropped.iter().map(|d| d.0).collect();
        assert_eq!(names, vec![DeferTaskrun, SingleIssuer]);
        // Never asked for defer_taskrun without single_issuer.
        assert!(seen
            .iter()
            .all(|f| !f.contains(&DeferTaskrun) || f.contains(&SingleIssuer)));
    }

    #[test]
    fn an_error_other_than_einval_is_returned_not_retried() {
        let mut calls = 0;
        let r = build(&UringFlag::ALL, |_| {
            calls += 1;
            Err::<(), _>(io::Error::from_raw_os_error(libc::ENOMEM))
        });
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOMEM));
        assert_eq!(calls, 1);
    }

    #[test]
    fn einval_with_no_flag_left_is_the_error() {
        let r = build(&[], |_| Err::<(), _>(einval()));
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn sets_the_kernel_would_reject_for_their_shape_are_refused_up_front() {
        assert!(check(&[DeferTaskrun]).is_err());
        assert!(check(&[TaskrunFlag]).is_err());
        assert!(check(&[TaskrunFlag, DeferTaskrun, SingleIssuer]).is_ok());
        assert!(check(&[]).is_ok());
    }
}
