//! Unit tests of the fixture's task store (`tasks.rs`): timestamps, cancellation, partial
//! answers to a task's input requests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sonic_rs::Value;

use super::tasks::{iso8601, Era, Job, Status, Tasks};

#[test]
fn iso8601_of_known_instants() {
    let at =
        |s: u64, ms: u64| iso8601(SystemTime::UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    assert_eq!(at(1_767_323_045, 678), "2026-01-02T03:04:05.678Z");
}

#[test]
fn a_cancelled_job_settles_cancelled_and_answers_resume_input() {
    let tasks = Arc::new(Tasks::default());
    let slow = Job::SlowCompute {
        seconds: 30.0,
        label: "x".into(),
    };
    let t = tasks.start(Era::Modern, slow, None);
    assert_eq!(tasks.cancel(&t.id, Era::Modern), Some(Status::Working));
    let end = tasks.wait(&t.id, Duration::from_secs(5), |t| t.status.terminal());
    assert_eq!(end.unwrap().status, Status::Cancelled);
    assert!(tasks.get(&t.id, Era::Legacy).is_none(), "eras do not mix");

    let t = tasks.start(Era::Modern, Job::MultiInput, None);
    let asked = tasks.wait(&t.id, Duration::from_secs(5), |t| t.inputs.len() == 2);
    assert_eq!(asked.unwrap().status, Status::InputRequired);
    let yes: Value =
        sonic_rs::from_str(r#"{"action":"accept","content":{"name":"n","confirm":true}}"#).unwrap();
    assert!(tasks.update(&t.id, Era::Modern, &[("name".into(), yes.clone())]));
    let after = tasks.get(&t.id, Era::Modern).unwrap();
    assert_eq!(after.status, Status::InputRequired);
    assert_eq!(after.inputs.len(), 1);
    assert_eq!(after.inputs[0].0, "confirm");
    tasks.update(&t.id, Era::Modern, &[("confirm".into(), yes)]);
    let end = tasks.wait(&t.id, Duration::from_secs(5), |t| t.status.terminal());
    assert_eq!(end.unwrap().status, Status::Completed);
}
