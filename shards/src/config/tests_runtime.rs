//! Config checks of the shard runtime's io_uring setup flags (`uring_setup`).

use super::tests::{check_all, ok};
use crate::rt::uring_setup::UringFlag;

#[test]
fn uring_setup_takes_known_flags_in_shapes_the_kernel_accepts() {
    let c = crate::config::parse_str(
        "[server]\nuring_setup = [\"single_issuer\", \"defer_taskrun\"]\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(
        c.server.uring_setup,
        vec![UringFlag::SingleIssuer, UringFlag::DeferTaskrun]
    );
    ok("[server]\nuring_setup = []\n");
    let d = crate::config::parse_str("", "t.toml").unwrap();
    assert_eq!(
        d.server.uring_setup,
        vec![
            UringFlag::CoopTaskrun,
            UringFlag::TaskrunFlag,
            UringFlag::SingleIssuer
        ],
        "the default"
    );
    ok("[server]\nuring_setup = [\"coop_taskrun\", \"taskrun_flag\"]\n");
    check_all(&[
        (
            "[server]\nuring_setup = [\"defer_taskrun\"]\n",
            2,
            "server.uring_setup",
            "defer_taskrun needs single_issuer",
        ),
        (
            "[server]\nuring_setup = [\"taskrun_flag\"]\n",
            2,
            "server.uring_setup",
            "taskrun_flag needs coop_taskrun or defer_taskrun",
        ),
    ]);
    let e = crate::config::parse_str("[server]\nuring_setup = [\"sqpoll\"]\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sqpoll") && e.contains("uring_setup"), "{e}");
}
