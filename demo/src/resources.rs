//! The conformance fixture's resources (enabled by `DEMO_CONFORMANCE=1`).
//!
//! Owns `resources/list`, `resources/templates/list`, `resources/read`,
//! `resources/subscribe` / `resources/unsubscribe` and the completion values
//! of the template's `{id}`:
//!
//! | URI                         | contents                                        |
//! |-----------------------------|-------------------------------------------------|
//! | `test://static-text`        | text/plain                                      |
//! | `test://static-binary`      | image/png blob (base64)                         |
//! | `test://template/{id}/data` | application/json echoing `id` (template)        |
//! | `test://watched-resource`   | text/plain; `notifications/resources/updated` every 3 s while subscribed |
//! | `test://dynamic-resource`   | text/plain; exists from 2 s after `initialize`  |
//!
//! An unknown URI is -32002 with `data: {uri}` (the legacy-era code; -32602
//! on the 2026-07-28 path). The timed notifications are sent by the
//! session's ticker (`session.rs`), or on the 2026 path by the listen
//! stream (`subscriptions.rs`).

use serde::Serialize;
use sonic_rs::Value;

use super::protocol::{no_cursor, send_error_data, send_result, str_param, Empty, Reply};
use super::session::{Session, WATCHED_URI};
use super::tools::{ResourceContents, PNG_B64};

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";
const DYNAMIC_URI: &str = "test://dynamic-resource";
/// Completion candidates for the template's `id`.
const TEMPLATE_IDS: [&str; 4] = ["1", "2", "3", "123"];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    uri: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    mime_type: &'static str,
}

const STATIC: [Resource; 3] = [
    Resource {
        uri: "test://static-text",
        name: "static-text",
        title: "Static Text Resource",
        description: "A static text resource for testing",
        mime_type: "text/plain",
    },
    Resource {
        uri: "test://static-binary",
        name: "static-binary",
        title: "Static Binary Resource",
        description: "A static binary resource (image) for testing",
        mime_type: "image/png",
    },
    Resource {
        uri: WATCHED_URI,
        name: "watched-resource",
        title: "Watched Resource",
        description: "A subscribable resource reported as updated every 3 seconds",
        mime_type: "text/plain",
    },
];

const DYNAMIC: Resource = Resource {
    uri: DYNAMIC_URI,
    name: "dynamic-resource",
    title: "Dynamic Resource",
    description: "A resource that was added dynamically, 2 s after initialize",
    mime_type: "text/plain",
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Template {
    uri_template: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    mime_type: &'static str,
}

#[derive(Serialize)]
struct ListResult<'a> {
    resources: Vec<&'a Resource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplatesResult {
    resource_templates: [Template; 1],
}

#[derive(Serialize)]
struct ReadResult {
    contents: [ResourceContents; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateData<'a> {
    id: &'a str,
    template_test: bool,
    data: String,
}

pub fn list(session: &Session, id: &Value, params: &Value) -> Reply {
    if let Err(reply) = no_cursor(id, params) {
        return reply;
    }
    let mut resources: Vec<&Resource> = STATIC.iter().collect();
    if session.dynamic_visible() {
        resources.push(&DYNAMIC);
    }
    send_result(id, ListResult { resources })
}

pub fn templates(id: &Value, params: &Value) -> Reply {
    if let Err(reply) = no_cursor(id, params) {
        return reply;
    }
    let template = Template {
        uri_template: "test://template/{id}/data",
        name: "template",
        title: "Resource Template",
        description: "A resource template with parameter substitution",
        mime_type: "application/json",
    };
    send_result(
        id,
        TemplatesResult {
            resource_templates: [template],
        },
    )
}

/// The `{id}` of a URI matching the template, if it does.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix(TEMPLATE_PREFIX)?
        .strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn contents(session: &Session, uri: &str) -> Option<ResourceContents> {
    let text = |t: &str| Some(ResourceContents::text(uri, "text/plain", t));
    match uri {
        "test://static-text" => text("This is the content of the static text resource."),
        "test://static-binary" => Some(ResourceContents {
            uri: uri.to_string(),
            mime_type: "image/png",
            text: None,
            blob: Some(PNG_B64),
        }),
        WATCHED_URI => text("Watched resource content"),
        DYNAMIC_URI if session.dynamic_visible() => text("This resource was added dynamically."),
        _ => {
            let id = template_id(uri)?;
            let data = TemplateData {
                id,
                template_test: true,
                data: format!("Data for ID: {id}"),
            };
            let json = sonic_rs::to_string(&data).unwrap_or_default();
            Some(ResourceContents::text(uri, "application/json", json))
        }
    }
}

/// `resources/read`; an unknown URI is error `not_found` (the legacy -32002,
/// or -32602 on the 2026 path) with `data: {uri}`.
pub fn read(session: &Session, id: &Value, params: &Value, not_found: i64) -> Reply {
    let uri = match str_param(id, params, "uri") {
        Ok(uri) => uri,
        Err(reply) => return reply,
    };
    match contents(session, uri) {
        Some(c) => send_result(id, ReadResult { contents: [c] }),
        None => {
            let data: Value = sonic_rs::to_value(&UriData { uri }).unwrap_or_default();
            send_error_data(id, not_found, "Resource not found", &data)
        }
    }
}

#[derive(Serialize)]
struct UriData<'a> {
    uri: &'a str,
}

/// `resources/subscribe` (`on`) or `resources/unsubscribe`: any URI is
/// accepted; only `test://watched-resource` ever changes.
pub fn subscribe(session: &Session, id: &Value, params: &Value, on: bool) -> Reply {
    let uri = match str_param(id, params, "uri") {
        Ok(uri) => uri,
        Err(reply) => return reply,
    };
    session.subscribe(uri, on);
    let verb = if on {
        "Subscribed to"
    } else {
        "Unsubscribed from"
    };
    session.log_standalone("info", &format!("{verb} resource: {uri}"));
    send_result(id, Empty {})
}

/// Completion candidates for argument `arg` of resource template `uri`;
/// `None` if there is no such template.
pub fn completion_values(uri: &str, arg: &str) -> Option<&'static [&'static str]> {
    (uri == "test://template/{id}/data").then_some(if arg == "id" { &TEMPLATE_IDS } else { &[] })
}
