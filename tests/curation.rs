//! Tool curation and schema compaction through the real gateway, both drivers: a demo
//! server exposed with an allow list, a deny list, a rename, a description override and
//! `safe` compaction. The list shows exactly the curated tools, sorted; a renamed tool is
//! called under its new name and reaches the backend under its own; a hidden tool is
//! unknown; compaction shrinks the list without touching a validation keyword.

mod common;

use common::{Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn names(list: &sonic_rs::Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn curated_tools_are_listed_renamed_described_and_routed() {
    for driver in DRIVERS {
        let cfg = format!(
            "{}{}",
            common::demo_stdio("plain", ""),
            common::demo_stdio(
                "cur",
                "tools_allow = [\"echo\", \"add\", \"whoami\", \"crash\"]\ntools_deny = [\"crash\"]\ncompaction = \"safe\"\ndescription_budget = 24\n[servers.rename]\necho = \"say\"\n[servers.descriptions]\nadd = \"Sums a and b.\""
            )
        );
        let gw = Gateway::start(&cfg, driver, 2, &["plain", "cur"]);
        let sid = gw.initialize();
        let list = gw
            .post(
                &[("mcp-session-id", &sid)],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            )
            .json();
        let all = names(&list);
        let cur: Vec<&String> = all.iter().filter(|n| n.starts_with("cur__")).collect();
        assert_eq!(
            cur,
            ["cur__add", "cur__say", "cur__whoami"],
            "{driver}: {all:?}"
        );
        let tools = list["result"]["tools"].as_array().unwrap();
        let find = |n: &str| {
            tools
                .iter()
                .find(|t| t["name"].as_str() == Some(n))
                .unwrap()
        };
        assert_eq!(
            find("cur__add")["description"].as_str(),
            Some("Sums a and b.")
        );
        let said = find("cur__say")["description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(said.chars().count() <= 24, "{driver}: budget: {said}");
        // Compaction keeps every validation keyword of the input schema.
        let plain_add = find("plain__add")["inputSchema"].clone();
        let cur_add = find("cur__add")["inputSchema"].clone();
        assert_eq!(plain_add["required"], cur_add["required"], "{driver}");
        assert_eq!(plain_add["type"], cur_add["type"], "{driver}");
        for (k, v) in plain_add["properties"].as_object().unwrap().iter() {
            assert_eq!(v["type"], cur_add["properties"][k]["type"], "{driver}: {k}");
        }
        // The renamed tool reaches the backend under its own name.
        let r = gw.call(&sid, "cur__say", r#"{"message":"renamed"}"#);
        assert_eq!(
            r["result"]["content"][0]["text"].as_str(),
            Some("renamed"),
            "{driver}: {r:?}"
        );
        // The old name and a denied tool are unknown.
        for hidden in ["cur__echo", "cur__crash", "cur__sleep"] {
            let r = gw.call(&sid, hidden, "{}");
            assert_eq!(
                r["error"]["code"].as_i64(),
                Some(-32602),
                "{driver}: {hidden}: {r:?}"
            );
        }
        // The uncurated server is untouched.
        assert!(
            all.contains(&"plain__echo".to_string()) && all.contains(&"plain__crash".to_string())
        );
    }
}
