//! RBAC: what a principal's roles let it see and call.
//!
//! Compiled once per config into the snapshot. An item (a tool, prompt or resource of a
//! server) is allowed when some role of the principal allows both its server and the item
//! and no role of the principal denies either. A principal without roles gets
//! `default_roles`. With no `[[auth.roles]]` at all the policy is open: everything is
//! allowed (the loopback default, and API keys or tokens that only authenticate).

use crate::config::{AuthSection, RoleConfig};

/// What kind of item is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A tool (namespaced name).
    Tool,
    /// A prompt (namespaced name).
    Prompt,
    /// A resource or template (the gateway's URI).
    Resource,
}

/// A `*`/`?` glob.
#[derive(Debug, Clone, PartialEq)]
struct Glob(Box<[u8]>);

impl Glob {
    fn matches(&self, text: &str) -> bool {
        glob(&self.0, text.as_bytes())
    }
}

/// Does `t` match the `*`/`?` glob `p`?
pub fn glob(p: &[u8], t: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point (linear for `*` patterns).
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn globs(v: &[String]) -> Vec<Glob> {
    v.iter().map(|s| Glob(s.as_bytes().into())).collect()
}

fn any(gs: &[Glob], text: &str) -> bool {
    gs.iter().any(|g| g.matches(text))
}

#[derive(Debug, Clone, PartialEq)]
struct Role {
    name: String,
    servers: Vec<Glob>,
    deny_servers: Vec<Glob>,
    items: [Vec<Glob>; 3],
    deny_items: [Vec<Glob>; 3],
    rename: Vec<(String, String)>,
    descriptions: Vec<(String, String)>,
}

impl Role {
    fn new(r: &RoleConfig) -> Role {
        Role {
            name: r.name.clone(),
            servers: globs(&r.servers),
            deny_servers: globs(&r.deny_servers),
            items: [globs(&r.tools), globs(&r.prompts), globs(&r.resources)],
            deny_items: [
                globs(&r.deny_tools),
                globs(&r.deny_prompts),
                globs(&r.deny_resources),
            ],
            rename: r
                .rename
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
            descriptions: r
                .descriptions
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
        }
    }
}

/// A gateway tool name and what a role shows instead (a name or a description).
pub type Pair<'a> = (&'a str, &'a str);

/// The compiled roles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    roles: Vec<Role>,
    default_roles: Vec<String>,
    /// Some role renames or describes a tool.
    pub has_overrides: bool,
}

impl Policy {
    /// Compiles `[auth]`'s roles.
    pub fn new(a: &AuthSection) -> Policy {
        Policy {
            roles: a.roles.iter().map(Role::new).collect(),
            default_roles: a.default_roles.clone(),
            has_overrides: a
                .roles
                .iter()
                .any(|r| !r.rename.is_empty() || !r.descriptions.is_empty()),
        }
    }

    /// No roles are defined: everything is allowed to everyone.
    pub fn is_open(&self) -> bool {
        self.roles.is_empty()
    }

    /// The roles that apply to a principal naming `roles`.
    pub fn effective<'a>(&'a self, roles: &'a [String]) -> &'a [String] {
        if roles.is_empty() {
            &self.default_roles
        } else {
            roles
        }
    }

    /// The tool renames and descriptions of a principal naming `roles`, its roles in config
    /// order (so the first role that overrides a tool wins): (renames, descriptions).
    pub fn overrides(&self, roles: &[String]) -> (Vec<Pair<'_>>, Vec<Pair<'_>>) {
        let mine = self
            .roles
            .iter()
            .filter(|r| self.effective(roles).contains(&r.name));
        let (mut renames, mut descriptions) = (Vec::new(), Vec::new());
        for r in mine {
            renames.extend(r.rename.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            descriptions.extend(r.descriptions.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        }
        (renames, descriptions)
    }

    /// May a principal with `roles` see and use item `name` of server `server`?
    pub fn allows(&self, roles: &[String], kind: ItemKind, server: &str, name: &str) -> bool {
        if self.is_open() {
            return true;
        }
        let k = kind as usize;
        let mine = || {
            self.roles
                .iter()
                .filter(|r| self.effective(roles).contains(&r.name))
        };
        let denied = mine().any(|r| any(&r.deny_servers, server) || any(&r.deny_items[k], name));
        !denied && mine().any(|r| any(&r.servers, server) && any(&r.items[k], name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml: &str) -> Policy {
        let cfg = crate::config::parse_str(toml, "t.toml").unwrap();
        Policy::new(&cfg.auth)
    }

    #[test]
    fn globs_match_like_shells() {
        let g = |p: &str, t: &str| glob(p.as_bytes(), t.as_bytes());
        assert!(g("*", "") && g("*", "abc") && g("a*c", "abbbc") && g("a?c", "abc"));
        assert!(g("time__*", "time__now") && !g("time__*", "demo__time__now"));
        assert!(!g("a?c", "ac") && !g("abc", "abcd") && g("*__delete*", "x__delete_all"));
    }

    #[test]
    fn some_role_must_allow_and_no_role_may_deny() {
        let p = policy(
            "[[auth.roles]]\nname = \"reader\"\ntools = [\"time__*\", \"demo__echo\"]\n\
             [[auth.roles]]\nname = \"ops\"\nservers = [\"demo\"]\ndeny_tools = [\"demo__crash\"]\n\
             [[auth.roles]]\nname = \"no-demo\"\ndeny_servers = [\"demo\"]\n",
        );
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = ItemKind::Tool;
        assert!(p.allows(&r(&["reader"]), t, "time", "time__now"));
        assert!(p.allows(&r(&["reader"]), t, "demo", "demo__echo"));
        assert!(!p.allows(&r(&["reader"]), t, "demo", "demo__add"));
        assert!(p.allows(&r(&["ops"]), t, "demo", "demo__add"));
        assert!(!p.allows(&r(&["ops"]), t, "time", "time__now"));
        assert!(!p.allows(&r(&["ops", "reader"]), t, "demo", "demo__crash"));
        assert!(!p.allows(&r(&["reader", "no-demo"]), t, "demo", "demo__echo"));
        assert!(!p.allows(&r(&["nobody"]), t, "time", "time__now"));
        assert!(
            !p.allows(&[], t, "time", "time__now"),
            "no roles, no default roles"
        );
        assert!(p.allows(&r(&["reader"]), ItemKind::Prompt, "time", "anything"));
    }

    #[test]
    fn without_roles_the_policy_is_open() {
        let p = policy("");
        assert!(p.is_open());
        assert!(p.allows(&[], ItemKind::Resource, "x", "o1m://x/y"));
    }

    #[test]
    fn default_roles_apply_to_principals_without_roles() {
        let p = policy(
            "[auth]\ndefault_roles = [\"guest\"]\n[[auth.roles]]\nname = \"guest\"\ntools = [\"time__*\"]\n",
        );
        assert!(p.allows(&[], ItemKind::Tool, "time", "time__now"));
        assert!(!p.allows(&[], ItemKind::Tool, "demo", "demo__echo"));
    }
}
