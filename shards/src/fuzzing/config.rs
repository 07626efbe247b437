//! The config file: any text is parsed and validated into a config or into errors that
//! point inside the text, never a panic; a config that validates compiles its auth.

use crate::auth::verify::SharedAuth;
use crate::config::{line_col, parse_str_all};

/// Config text (bytes that are not UTF-8 are refused before parsing, as `load_file` does).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.matches('\n').count() + 1;
    match parse_str_all(text, "fuzz.toml") {
        Ok(cfg) => {
            let _ = SharedAuth::new(&cfg.auth);
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.line <= lines, "line {} of {lines}", e.line);
                assert!(!e.to_string().is_empty());
            }
        }
    }
    let (line, col) = line_col(text, data.len() / 2);
    assert!(line >= 1 && line <= lines && col >= 1);
}
