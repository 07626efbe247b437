//! `x-mcp-header` (2026-07-28, SEP-2243): which arguments of a tool travel in HTTP headers.
//!
//! A tool's `inputSchema` may mark a property `"x-mcp-header": "Region"`: an HTTP client
//! then sends that argument's value as `Mcp-Param-Region` too, and a server checks that the
//! two agree. The gateway does both (`route/params.rs` checks what clients send,
//! `upstream/modern.rs` writes what backends get), from the map derived here once per
//! catalog build, on the control thread: a tool without the annotation costs one substring
//! search here and nothing per request.
//!
//! The spec's constraints, as the official SDKs read them: the annotation sits on a property
//! reached from the root by `properties` keys only (not through `items`, `anyOf`, `$defs`,
//! `if`, ...; `$ref` is not followed, data keywords such as `default` or `enum` are not
//! schemas); it is a non-empty RFC 9110 token, case-insensitively unique in the schema; and
//! the property's `type` is one of `string`, `integer`, `boolean`. A tool that breaks one is
//! invalid: HTTP clients must drop it from `tools/list`, so the catalog drops it, with the
//! reason. The gateway also bounds the annotations of one tool to [`MAX_MIRRORED`] (a client
//! sends at most 64 header lines in all).

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Most `x-mcp-header` annotations one tool may have.
pub const MAX_MIRRORED: usize = 32;

/// One argument mirrored into a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    /// `{Name}` of `Mcp-Param-{Name}`, as the schema writes it (what backends get).
    pub name: Box<str>,
    /// The same, lower-cased (header names compare case-insensitively).
    pub lower: Box<str>,
    /// The `properties` keys from the schema root to the property.
    pub path: Box<[Box<str>]>,
}

/// A tool's mirrored arguments, in schema order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolHeaders {
    /// Every mirrored argument.
    pub mirrored: Box<[Mirrored]>,
}

/// The keywords whose value is one schema, a list of schemas, or a map of schemas (JSON
/// Schema 2020-12 applicators, and the older `definitions`). Crossing any of them leaves
/// the `properties` chain.
const ONE: [&str; 11] = [
    "items",
    "contains",
    "unevaluatedItems",
    "additionalProperties",
    "propertyNames",
    "unevaluatedProperties",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];
const LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
const MAP: [&str; 4] = [
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];

/// The mirrored arguments of one tool (its `tools/list` entry): `Ok(None)` when it has no
/// `x-mcp-header`, `Err(reason)` when an annotation breaks the spec's constraints.
pub fn of_tool(tool: &[u8]) -> Result<Option<ToolHeaders>, String> {
    if memchr::memmem::find(tool, b"x-mcp-header").is_none() {
        return Ok(None);
    }
    let Ok(v) = sonic_rs::from_slice::<Value>(tool) else {
        return Ok(None);
    };
    let Some(schema) = v.get("inputSchema") else {
        return Ok(None);
    };
    let mut found: Vec<Mirrored> = Vec::new();
    // (path from the root by `properties` only, or None once off it; the schema). An explicit
    // stack: the walk never recurses, whatever the depth.
    let mut stack: Vec<(Option<Vec<&str>>, &Value)> = vec![(Some(Vec::new()), schema)];
    while let Some((path, node)) = stack.pop() {
        let Some(obj) = node.as_object() else {
            continue;
        };
        if let Some(ann) = obj.get(&"x-mcp-header") {
            found.push(annotation(path.as_deref(), ann, node, &found)?);
            if found.len() > MAX_MIRRORED {
                return Err(format!(
                    "more than {MAX_MIRRORED} x-mcp-header annotations (the gateway's bound)"
                ));
            }
        }
        for (k, child) in obj.iter() {
            if k == "properties" {
                let Some(props) = child.as_object() else {
                    continue;
                };
                for (name, sub) in props.iter() {
                    let deeper = path.as_ref().map(|p| {
                        let mut p = p.clone();
                        p.push(name);
                        p
                    });
                    stack.push((deeper, sub));
                }
            } else if ONE.contains(&k) {
                stack.push((None, child));
            } else if LIST.contains(&k) {
                if let Some(a) = child.as_array() {
                    stack.extend(a.iter().map(|s| (None, s)));
                }
            } else if MAP.contains(&k) {
                if let Some(m) = child.as_object() {
                    stack.extend(m.iter().map(|(_, s)| (None, s)));
                }
            }
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    // Pushed in reverse of schema order by the stack: back to the order the schema has.
    found.reverse();
    Ok(Some(ToolHeaders {
        mirrored: found.into_boxed_slice(),
    }))
}

/// One annotation `ann` on the schema `node` at `path`, checked against the constraints and
/// the ones already `found`.
fn annotation(
    path: Option<&[&str]>,
    ann: &Value,
    node: &Value,
    found: &[Mirrored],
) -> Result<Mirrored, String> {
    let path = match path {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Err(
                "x-mcp-header where no chain of `properties` reaches it from the schema root"
                    .into(),
            )
        }
    };
    let at = shown(&path.join("."));
    let Some(name) = ann.as_str() else {
        return Err(format!("property `{at}`: x-mcp-header is not a string"));
    };
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(format!(
            "property `{at}`: x-mcp-header `{}` is not an HTTP field-name token",
            shown(name)
        ));
    }
    match node.get("type").and_then(|t| t.as_str()) {
        Some("string" | "integer" | "boolean") => {}
        _ => {
            return Err(format!(
                "property `{at}`: x-mcp-header is only allowed on a property of type string, integer or boolean"
            ))
        }
    }
    let lower = name.to_ascii_lowercase();
    if found.iter().any(|m| *m.lower == *lower) {
        return Err(format!(
            "property `{at}`: x-mcp-header `{}` is used twice (names compare case-insensitively)",
            shown(name)
        ));
    }
    Ok(Mirrored {
        name: name.into(),
        lower: lower.into(),
        path: path.iter().map(|s| Box::<str>::from(*s)).collect(),
    })
}

/// RFC 9110 5.6.2 `tchar`.
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A backend's text cut to 64 characters for a report.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(schema: &str) -> Vec<u8> {
        format!(r#"{{"name":"t","inputSchema":{schema}}}"#).into_bytes()
    }

    fn paths(schema: &str) -> Vec<(String, String)> {
        of_tool(&tool(schema))
            .unwrap()
            .map(|h| {
                h.mirrored
                    .iter()
                    .map(|m| (m.name.to_string(), m.path.join(".")))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn invalid(schema: &str) -> String {
        of_tool(&tool(schema)).expect_err(schema)
    }

    #[test]
    fn annotated_properties_are_found_at_any_depth_in_schema_order() {
        let s = r#"{"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "query":{"type":"string"},
            "opts":{"type":"object","properties":{
                "limit":{"type":"integer","x-mcp-header":"Limit"},
                "dry":{"type":"boolean","x-mcp-header":"Dry-Run"}}},
            "method":{"type":"string","x-mcp-header":"Method"}}}"#;
        assert_eq!(
            paths(s),
            [
                ("Region".into(), "region".into()),
                ("Limit".into(), "opts.limit".into()),
                ("Dry-Run".into(), "opts.dry".into()),
                ("Method".into(), "method".into()),
            ]
        );
        let h = of_tool(&tool(s)).unwrap().unwrap();
        assert_eq!(&*h.mirrored[2].lower, "dry-run");
    }

    #[test]
    fn tools_without_the_annotation_have_no_map() {
        assert_eq!(of_tool(&tool(r#"{"type":"object"}"#)), Ok(None));
        // Mentioned in text, or as data, is not an annotation.
        assert_eq!(
            of_tool(
                br#"{"name":"t","description":"uses x-mcp-header","inputSchema":{"type":"object","properties":{"a":{"type":"string","default":{"x-mcp-header":"A"},"enum":[{"x-mcp-header":"B"}]}}}}"#
            ),
            Ok(None)
        );
        // A property named x-mcp-header is a property.
        assert_eq!(
            paths(r#"{"type":"object","properties":{"x-mcp-header":{"type":"string"}}}"#),
            Vec::<(String, String)>::new()
        );
    }

    #[test]
    fn annotations_breaking_the_constraints_make_the_tool_invalid() {
        // SEP-2243's conformance table, and the 2026-07-28 reachability rule.
        let prop = |p: &str| format!(r#"{{"type":"object","properties":{{"a":{p}}}}}"#);
        for (p, why) in [
            (r#"{"type":"string","x-mcp-header":""}"#, "token"),
            (r#"{"type":"string","x-mcp-header":"My Region"}"#, "token"),
            (
                r#"{"type":"string","x-mcp-header":"Region:Primary"}"#,
                "token",
            ),
            (r#"{"type":"string","x-mcp-header":"Région"}"#, "token"),
            (r#"{"type":"string","x-mcp-header":"Region\t1"}"#, "token"),
            (r#"{"type":"string","x-mcp-header":7}"#, "not a string"),
            (r#"{"type":"number","x-mcp-header":"N"}"#, "type"),
            (r#"{"type":"array","x-mcp-header":"N"}"#, "type"),
            (r#"{"type":"object","x-mcp-header":"N"}"#, "type"),
            (r#"{"type":"null","x-mcp-header":"N"}"#, "type"),
            (r#"{"type":["string","null"],"x-mcp-header":"N"}"#, "type"),
            (r#"{"x-mcp-header":"N"}"#, "type"),
        ] {
            let e = invalid(&prop(p));
            assert!(e.contains(why) && e.contains("`a`"), "{p}: {e}");
        }
        for s in [
            r#"{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"Region"},"b":{"type":"string","x-mcp-header":"Region"}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"Region"},"b":{"type":"string","x-mcp-header":"REGION"}}}"#,
        ] {
            assert!(invalid(s).contains("used twice"), "{s}");
        }
        for s in [
            r#"{"type":"string","x-mcp-header":"Root"}"#,
            r#"{"type":"object","properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"I"}}}}"#,
            r#"{"type":"object","anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}"#,
            r##"{"type":"object","$defs":{"d":{"type":"string","x-mcp-header":"D"}},"properties":{"a":{"$ref":"#/$defs/d"}}}"##,
            r#"{"type":"object","if":{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}}"#,
            r#"{"type":"object","patternProperties":{"^a":{"type":"string","x-mcp-header":"A"}}}"#,
            r#"{"type":"object","additionalProperties":{"type":"string","x-mcp-header":"A"}}"#,
        ] {
            assert!(invalid(s).contains("no chain of `properties`"), "{s}");
        }
        // "Method" is allowed: it makes Mcp-Param-Method, not Mcp-Method.
        assert_eq!(
            paths(
                r#"{"type":"object","properties":{"m":{"type":"string","x-mcp-header":"Method"}}}"#
            )
            .len(),
            1
        );
    }

    #[test]
    fn the_number_of_annotations_is_bounded() {
        let props = |n: usize| {
            (0..n)
                .map(|i| format!(r#""p{i}":{{"type":"string","x-mcp-header":"H{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let s = |n| format!(r#"{{"type":"object","properties":{{{}}}}}"#, props(n));
        assert_eq!(paths(&s(MAX_MIRRORED)).len(), MAX_MIRRORED);
        assert!(invalid(&s(MAX_MIRRORED + 1)).contains("more than"));
    }

    #[test]
    fn deep_schemas_within_the_nesting_bound_are_walked() {
        // A backend's list passed the nesting bound (128 by default); two levels per step.
        let mut s = String::from(r#"{"type":"string","x-mcp-header":"Deep"}"#);
        for i in 0..60 {
            s = format!(r#"{{"type":"object","properties":{{"p{i}":{s}}}}}"#);
        }
        // On a stack like the control thread's (where catalogs are built): the parse of the
        // tool recurses per level, the walk does not.
        let h = std::thread::Builder::new()
            .stack_size(crate::rt::THREAD_STACK_BYTES)
            .spawn(move || of_tool(&tool(&s)).unwrap().unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(h.mirrored[0].path.len(), 60);
        assert_eq!(&*h.mirrored[0].path[0], "p59");
    }
}
