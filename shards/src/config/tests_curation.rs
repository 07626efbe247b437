//! Config checks of tool curation: per server and per role (`validate_curation.rs`).

use super::tests::{check_all, ok, STDIO};

#[test]
fn curation_settings_are_checked() {
    check_all(&[
        (
            &format!("{STDIO}[servers.rename]\necho = \"bad name!\"\n"),
            5,
            "servers[0].rename",
            "a tool name is 1 to 64",
        ),
        (
            &format!("{STDIO}description_budget = 3\n"),
            5,
            "servers[0].description_budget",
            "16 to 10000",
        ),
        (
            &format!("{STDIO}compaction = \"tiny\"\n"),
            5,
            "servers[0].compaction",
            "unknown variant `tiny`",
        ),
    ]);
    ok(&format!(
        "[proxy]\ncompaction = \"safe\"\n{STDIO}tools_allow = [\"echo\", \"add\"]\ntools_deny = [\"crash\"]\ncompaction = \"aggressive\"\nhide_invalid_schemas = true\n[servers.rename]\necho = \"say\"\n[servers.descriptions]\nadd = \"Adds two numbers.\"\n"
    ));
}

const ROLE: &str = "[[auth.roles]]\nname = \"support\"\n";

#[test]
fn role_renames_and_descriptions_are_checked() {
    let role = |extra: &str| format!("{ROLE}{extra}{STDIO}");
    check_all(&[
        (
            &role("[auth.roles.rename]\n\"a__echo\" = \"say back\"\n"),
            3,
            "auth.roles[0].rename",
            "a tool name is 1 to 64",
        ),
        (
            &role("[auth.roles.rename]\n\"a__echo\" = \"search_tools\"\n"),
            3,
            "auth.roles[0].rename",
            "search meta tool",
        ),
        (
            &role("[auth.roles.rename]\n\"a__echo\" = \"say\"\n\"a__add\" = \"say\"\n"),
            3,
            "auth.roles[0].rename",
            "already renamed to `say`",
        ),
        (
            &role("[auth.roles.rename]\n\"a__echo\" = \"a__add\"\n\"a__add\" = \"plus\"\n"),
            3,
            "auth.roles[0].rename",
            "rename chains are refused",
        ),
        (
            &role("[auth.roles.rename]\n\"a__*\" = \"anything\"\n"),
            3,
            "auth.roles[0].rename",
            "not patterns",
        ),
        (
            &role("[auth.roles.descriptions]\n\"a__echo\" = \"  \"\n"),
            3,
            "auth.roles[0].descriptions",
            "a description is 1 to 4096 bytes",
        ),
    ]);
    ok(&role(
        "[auth.roles.rename]\n\"a__echo\" = \"say_back\"\n[auth.roles.descriptions]\n\"a__echo\" = \"Say it back.\"\n",
    ));
}
