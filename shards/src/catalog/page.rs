//! Splitting one page of a backend's list result into items.

use sonic_rs::JsonValueTrait;

use crate::catalog::RawItem;

/// Splits a list result: the array under `array_key`, each item's `key_field`, and
/// `nextCursor`. Items are kept verbatim.
pub fn parse_page(
    result: &[u8],
    array_key: &str,
    key_field: &str,
) -> Result<(Vec<RawItem>, Option<String>), String> {
    // A backend's bytes: checked here as well as in the envelope, since one bad item would
    // make the merged list invalid JSON for every client.
    crate::wire::scan::check(result, crate::wire::scan::max_depth())
        .map_err(|d| format!("result is not acceptable JSON ({d:?})"))?;
    let items = sonic_rs::get(result, [array_key])
        .map_err(|_| format!("result has no `{array_key}` array"))?;
    if !items.is_array() {
        return Err(format!("`{array_key}` is not an array"));
    }
    let mut out = Vec::new();
    for item in sonic_rs::to_array_iter(items.as_raw_str()) {
        let item = item.map_err(|e| format!("bad `{array_key}` entry: {e}"))?;
        let raw = item.as_raw_str();
        let key = sonic_rs::get(raw, [key_field])
            .ok()
            .and_then(|n| n.as_str().map(str::to_string))
            .ok_or_else(|| format!("an entry of `{array_key}` has no string `{key_field}`"))?;
        out.push(RawItem {
            key,
            json: raw.as_bytes().to_vec(),
        });
    }
    let cursor = sonic_rs::get(result, ["nextCursor"])
        .ok()
        .and_then(|c| c.as_str().map(str::to_string));
    Ok((out, cursor))
}

/// [`parse_page`] for `tools/list`.
pub fn parse_tools_page(result: &[u8]) -> Result<(Vec<RawItem>, Option<String>), String> {
    parse_page(result, "tools", "name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_cursor() {
        let (t, cur) =
            parse_tools_page(br#"{"tools":[{"name":"x","inputSchema":{}}],"nextCursor":"p2"}"#)
                .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key, "x");
        assert_eq!(cur.as_deref(), Some("p2"));
        assert!(parse_tools_page(br#"{"nope":1}"#).is_err());
        let (r, _) = parse_page(
            br#"{"resources":[{"uri":"a://b","name":"n"}]}"#,
            "resources",
            "uri",
        )
        .unwrap();
        assert_eq!(r[0].key, "a://b");
    }
}
