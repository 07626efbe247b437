//! Config checks of `unix:` backend URLs (`validate.rs` with `http::url::parse_unix`): each
//! refusal names the key and says what is wrong, and the accepted forms load.

use super::tests::{check_all, http, ok};

#[test]
fn unix_urls_are_checked_where_http_urls_are() {
    let long = format!("url = \"unix:/{}\"\n", "s".repeat(107));
    let cases = [
        (
            long.as_str(),
            "servers[0].url",
            "longer than the 107 a socket address holds",
        ),
        (
            "url = \"unix:run/a.sock\"\n",
            "servers[0].url",
            "must be absolute",
        ),
        (
            "url = \"https+unix:/run/a.sock\"\n",
            "servers[0].url",
            "TLS does not apply",
        ),
        (
            "url = \"unix:/run/a.sock:https://h/mcp\"\n",
            "servers[0].url",
            "TLS and schemes do not apply",
        ),
        (
            "urls = [\"http://127.0.0.1:9/\", \"unix:/a.sock:mcp\"]\n",
            "servers[0].urls[1]",
            "must start with `/`",
        ),
    ];
    let texts: Vec<String> = cases.iter().map(|c| http(c.0)).collect();
    let checks: Vec<(&str, usize, &str, &str)> = cases
        .iter()
        .zip(&texts)
        .map(|(c, t)| (t.as_str(), 4, c.1, c.2))
        .collect();
    check_all(&checks);
    ok(&http("url = \"unix:/run/mcp/search.sock\"\n"));
    ok(&http(
        "urls = [\"unix:/run/mcp/a.sock:/mcp\", \"http://127.0.0.1:9/mcp\"]\n",
    ));
    ok(&http(
        "url = \"unix:/run/mcp/a.sock:/mcp\"\nsession = \"per_client\"\n",
    ));
}
