mod routing {
    use super::super::*;
    use crate::upstream::{Deadline, EventRx};
    use std::cell::RefCell as Cell;

    const ASK: &[u8] = br#"{"jsonrpc":"2.0","id":5,"method":"elicitation/create","params":{}}"#;

    fn routes_with(calls: &[u64]) -> (LocalRoutes, Vec<EventRx>) {
        let routes = LocalRoutes::default();
        let mut rxs = Vec::new();
        for id in calls {
            let (tx, rx) = Deadline::none().events();
            routes.sinks.borrow_mut().push((*id, tx));
            rxs.push(rx);
        }
        (routes, rxs)
    }

    fn got(rx: &mut EventRx) -> Option<Vec<u8>> {
        rx.try_recv().map(|e| e.msg)
    }

    #[test]
    fn a_call_waiting_on_its_own_request_is_not_the_sender_of_the_next() {
        let (routes, mut rx) = routes_with(&[1]);
        let sent = Cell::new(Vec::new());
        let send = |m: Vec<u8>| sent.borrow_mut().push(m);
        // Call 1 alone: its request reaches it, and it now waits for the answer.
        handle_message("b", ASK, &routes, &send, "test");
        assert_eq!(got(&mut rx[0]).as_deref(), Some(ASK));
        // Call 2 starts; the next request can only be call 2's.
        let (tx2, mut rx2) = Deadline::none().events();
        routes.sinks.borrow_mut().push((2, tx2));
        let ask2 = br#"{"jsonrpc":"2.0","id":6,"method":"elicitation/create","params":{}}"#;
        handle_message("b", ask2, &routes, &send, "test");
        assert_eq!(got(&mut rx2).as_deref(), Some(&ask2[..]));
        assert!(sent.borrow().is_empty(), "nothing refused");
        // Both wait now: a third request cannot be attributed and is refused.
        let ask3 = br#"{"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{}}"#;
        handle_message("b", ask3, &routes, &send, "test");
        assert!(sent.borrow()[0].starts_with(br#"{"jsonrpc":"2.0","id":7,"error""#));
        // Call 1's request is answered: call 1 may send again.
        routes.answered(br#"{"jsonrpc":"2.0","id":5,"result":{}}"#);
        handle_message("b", ask3, &routes, &send, "test");
        assert_eq!(got(&mut rx[0]).as_deref(), Some(&ask3[..]));
        // A call that ends forgets what it waited on.
        routes.call_ended(2);
        assert!(routes.waiting.borrow().get(&2).is_none());
        assert!(!routes.awaiting.borrow().values().any(|c| *c == 2));
    }

    #[test]
    fn a_listens_notifications_go_to_it_alone_and_it_never_owns_a_log_line() {
        let (routes, mut rx) = routes_with(&[1]);
        let routes = Rc::new(routes);
        let (ltx, mut lrx) = Deadline::none().events();
        let (mut reg, _reply) = register(&routes, 9, Some(&ltx), None, None, true);
        let send = |_: Vec<u8>| panic!("not refused");
        let tag = r#""_meta":{"io.modelcontextprotocol/subscriptionId":9}"#;
        for m in [
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{{"notifications":{{}},{tag}}}}}"#
            ),
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{{"uri":"a://b",{tag}}}}}"#
            ),
        ] {
            handle_message("b", m.as_bytes(), &routes, &send, "test");
            assert_eq!(got(&mut lrx).as_deref(), Some(m.as_bytes()));
            assert_eq!(got(&mut rx[0]), None);
        }
        // A log line has one candidate still: the call, not the listen.
        let log = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
        handle_message("b", log, &routes, &send, "test");
        assert_eq!(got(&mut rx[0]).as_deref(), Some(&log[..]));
        assert_eq!(got(&mut lrx), None);
        // Another listen's id, or none, is not this one's.
        let other = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"a://b","_meta":{"io.modelcontextprotocol/subscriptionId":10}}}"#;
        handle_message("b", other, &routes, &send, "test");
        assert_eq!(got(&mut lrx), None);
        reg.release();
        assert!(routes.listens.borrow().is_empty());
    }

    #[test]
    fn a_request_naming_a_calls_progress_token_goes_to_that_call() {
        let (routes, mut rx) = routes_with(&[1, 2]);
        let tx2 = routes.sinks.borrow()[1].1.clone();
        routes
            .progress
            .borrow_mut()
            .insert(br#""o1m.0.9""#.to_vec(), tx2);
        let ask = br#"{"jsonrpc":"2.0","id":8,"method":"sampling/createMessage","params":{"_meta":{"progressToken":"o1m.0.9"}}}"#;
        let send = |_: Vec<u8>| panic!("not refused");
        handle_message("b", ask, &routes, &send, "test");
        assert_eq!(got(&mut rx[1]).as_deref(), Some(&ask[..]));
        assert_eq!(got(&mut rx[0]), None);
        assert_eq!(routes.waiting.borrow().get(&2), Some(&1));
    }

    #[test]
    fn a_request_naming_a_task_goes_to_the_call_that_follows_that_task() {
        let routes = Rc::new(LocalRoutes::default());
        let (tx1, mut rx1) = Deadline::none().events();
        let (tx2, mut rx2) = Deadline::none().events();
        // Two calls in flight: one is a tasks/result for task "t1", the other anything else.
        let (reg1, _r1) = register(&routes, 1, Some(&tx1), None, Some(b"\"t1\""), false);
        let (_reg2, _r2) = register(&routes, 2, Some(&tx2), None, None, false);
        let sent = Cell::new(Vec::new());
        let send = |m: Vec<u8>| sent.borrow_mut().push(m);
        let ask = br#"{"jsonrpc":"2.0","id":9,"method":"elicitation/create","params":{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t1"}}}}"#;
        handle_message("b", ask, &routes, &send, "test");
        assert_eq!(
            got(&mut rx1).as_deref(),
            Some(&ask[..]),
            "the task's own call"
        );
        assert_eq!(got(&mut rx2), None);
        assert!(sent.borrow().is_empty(), "nothing refused");
        // A request naming another task follows the usual rule: call 1 waits on its own
        // request, so the one free call is call 2.
        let other = br#"{"jsonrpc":"2.0","id":10,"method":"elicitation/create","params":{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t2"}}}}"#;
        handle_message("b", other, &routes, &send, "test");
        assert_eq!(got(&mut rx2).as_deref(), Some(&other[..]));
        // The call ended: its task route is gone with it.
        drop(reg1);
        assert!(routes.tasks.borrow().is_empty());
    }
}

mod registration {
    use super::super::*;
    use crate::upstream::Deadline;

    fn empty(r: &LocalRoutes) -> bool {
        r.pending.borrow().is_empty()
            && r.progress.borrow().is_empty()
            && r.sinks.borrow().is_empty()
    }

    #[test]
    fn a_call_dropped_before_its_answer_leaves_no_route_behind() {
        let routes = Rc::new(LocalRoutes::default());
        let (ev, mut ev_rx) = Deadline::none().events();
        let tok = br#""o1m.0.1""#;
        let (reg, _rx) = register(&routes, 7, Some(&ev), Some(tok), None, false);
        // Progress for its token reaches the call while it runs.
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"o1m.0.1","progress":1}}"#;
        handle_message("b", progress, &routes, &|_| {}, "test");
        assert!(ev_rx.try_recv().is_some());
        // The client left: the call's future, and its registration, are dropped.
        drop(reg);
        assert!(empty(&routes));
        handle_message("b", progress, &routes, &|_| {}, "test");
        assert!(
            ev_rx.try_recv().is_none(),
            "no progress for a call that is gone"
        );
    }

    #[test]
    fn release_says_whether_the_backend_still_owes_the_answer() {
        let routes = Rc::new(LocalRoutes::default());
        let (mut reg, rx) = register(&routes, 3, None, Some(b"\"t\""), None, false);
        assert!(
            routes.progress.borrow().is_empty(),
            "no events: no progress route"
        );
        assert!(reg.release(), "not answered yet");
        assert!(!reg.release(), "released once");
        drop(rx);
        let (mut reg, mut rx) = register(&routes, 4, None, None, None, false);
        let answer = br#"{"jsonrpc":"2.0","id":4,"result":{}}"#;
        handle_message("b", answer, &routes, &|_| {}, "test");
        assert!(rx.try_recv().unwrap().is_some(), "the answer arrived");
        assert!(!reg.release(), "answered: nothing owed");
        assert!(empty(&routes));
    }
}
