//! Bridged tasks with pending input, per shard: plain data; `route/tasks/to_legacy_input.rs`
//! fills and reads it (see there for the flow).

use std::collections::HashMap;
use std::rc::Rc;

/// Most bridged tasks of one caller with pending input on a shard.
pub const MAX_PER_CALLER: usize = 16;
/// Most bridged tasks with pending input on a shard.
pub const MAX_PER_SHARD: usize = 1024;

/// Where a bridged task's input stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputState {
    /// A 2025 `tasks/result` runs; the backend's request is not in hand (yet, or again).
    Waiting,
    /// The backend's request, parked as call `n` (`route/bridge.rs`):
    /// `{"method":…,"params":…}`.
    Asking {
        /// The park number.
        n: u64,
        /// The request.
        request: Vec<u8>,
    },
}

#[derive(Debug)]
struct Entry {
    owner: Rc<str>,
    state: InputState,
}

/// The shard's bridged tasks with pending input, by gateway task id.
#[derive(Debug, Default)]
pub struct Inputs {
    map: HashMap<Box<str>, Entry>,
}

impl Inputs {
    /// Takes task `gw` of `owner` in, [`InputState::Waiting`]; why not when a bound is met.
    pub fn admit(&mut self, gw: &str, owner: &Rc<str>) -> Result<(), String> {
        if self.map.len() >= MAX_PER_SHARD {
            return Err(format!(
                "the backend waits for input; the gateway already holds the pending input of {MAX_PER_SHARD} tasks, and will fetch this one's once one of those ends"
            ));
        }
        let mine = self.map.values().filter(|e| e.owner == *owner).count();
        if mine >= MAX_PER_CALLER {
            return Err(format!(
                "the backend waits for input; the gateway already holds the pending input of {MAX_PER_CALLER} of this caller's tasks: answer or cancel those first"
            ));
        }
        self.map.insert(
            gw.into(),
            Entry {
                owner: owner.clone(),
                state: InputState::Waiting,
            },
        );
        Ok(())
    }

    /// Forgets the tasks whose parked request ended on its own (`parked(n)` false: its
    /// timeout passed), whether or not their client polls them again, so abandoned tasks do
    /// not hold a caller's or the shard's bound.
    pub fn forget_ended(&mut self, parked: impl Fn(u64) -> bool) {
        self.map.retain(|_, e| match e.state {
            InputState::Asking { n, .. } => parked(n),
            InputState::Waiting => true,
        });
    }

    /// Where task `gw`'s input stands, if it has an entry.
    pub fn get(&self, gw: &str) -> Option<&InputState> {
        self.map.get(gw).map(|e| &e.state)
    }

    /// Sets the state of task `gw`; false when it has no entry (then nothing is added).
    pub fn set(&mut self, gw: &str, state: InputState) -> bool {
        match self.map.get_mut(gw) {
            Some(e) => {
                e.state = state;
                true
            }
            None => false,
        }
    }

    /// Takes task `gw`'s entry out; its state.
    pub fn remove(&mut self, gw: &str) -> Option<InputState> {
        self.map.remove(gw).map(|e| e.state)
    }

    /// How many tasks have an entry.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No task has an entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_whose_park_ended_free_their_callers_bound() {
        let mut t = Inputs::default();
        let me: Rc<str> = "me".into();
        for i in 0..MAX_PER_CALLER {
            t.admit(&format!("t{i}"), &me).unwrap();
            let asking = InputState::Asking {
                n: i as u64,
                request: b"{}".to_vec(),
            };
            assert!(t.set(&format!("t{i}"), asking));
        }
        assert!(t.admit("late", &me).is_err(), "the bound is met");
        // Parks 0..4 ended (their timeout); the rest are still parked.
        t.forget_ended(|n| n >= 4);
        assert_eq!(t.len(), MAX_PER_CALLER - 4);
        assert!(t.get("t0").is_none() && t.get("t4").is_some());
        assert!(t.admit("late", &me).is_ok(), "room again");
        // A task still waiting for its request is kept.
        t.forget_ended(|_| false);
        assert_eq!(t.get("late"), Some(&InputState::Waiting));
    }

    #[test]
    fn each_caller_and_the_shard_are_bounded() {
        let mut t = Inputs::default();
        let (a, b): (Rc<str>, Rc<str>) = ("alice".into(), "bob".into());
        for i in 0..MAX_PER_CALLER {
            t.admit(&format!("a{i}"), &a).unwrap();
        }
        let why = t.admit("a-more", &a).unwrap_err();
        assert!(why.contains("this caller"), "{why}");
        t.admit("b0", &b).unwrap();
        assert_eq!(t.len(), MAX_PER_CALLER + 1);
        assert_eq!(t.remove("a0"), Some(InputState::Waiting));
        t.admit("a-more", &a).unwrap();
        assert!(!t.set("nobody", InputState::Waiting), "set adds nothing");
        assert!(t.get("nobody").is_none());
        let mut t = Inputs::default();
        for i in 0..MAX_PER_SHARD {
            let owner: Rc<str> = format!("p{i}").into();
            t.admit(&format!("t{i}"), &owner).unwrap();
        }
        assert!(t.admit("one-more", &a).is_err());
    }
}
