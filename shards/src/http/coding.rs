//! Reading a client's `Accept-Encoding` (RFC 9110, section 12.5.3): does it take gzip?
//!
//! Only gzip is offered (see [`crate::http::gzip`]), so the question is whether gzip (or its
//! alias `x-gzip`) is listed with a weight above zero, or, when it is not listed, whether
//! `*` is. Names are case-insensitive, `q=0` refuses, and a weight applies to the coding
//! it follows. Anything that does not parse (a bad weight, a stray character, a header
//! longer than [`MAX_LEN`]) reads as "identity only": the answer is then sent as it would be
//! without the header, which every client accepts, and never an error.

/// Longest `Accept-Encoding` value read; a longer one reads as identity only. Real clients
/// send a few dozen bytes (`gzip, deflate, br, zstd`).
pub const MAX_LEN: usize = 512;

/// Does `value` (an `Accept-Encoding` field value; `None`: the header is absent) accept gzip?
pub fn accepts_gzip(value: Option<&[u8]>) -> bool {
    let Some(value) = value else {
        return false;
    };
    if value.len() > MAX_LEN {
        return false;
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let mut gzip = None;
    let mut star = None;
    for element in value.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim_matches(ows);
        if coding.is_empty() {
            // An empty list element is allowed (`gzip, , br`); a weight with no coding is not.
            if parts.next().is_some() {
                return false;
            }
            continue;
        }
        if !coding.bytes().all(is_tchar) {
            return false;
        }
        let mut q = None;
        for param in parts {
            let Some((name, v)) = param.trim_matches(ows).split_once('=') else {
                return false;
            };
            if !name.eq_ignore_ascii_case("q") {
                return false;
            }
            match qvalue(v) {
                Some(v) if q.is_none() => q = Some(v),
                _ => return false,
            }
        }
        let q = q.unwrap_or(1000);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip.get_or_insert(q);
        } else if coding == "*" {
            star.get_or_insert(q);
        }
    }
    gzip.or(star).is_some_and(|q| q > 0)
}

/// Optional whitespace (RFC 9110 `OWS`).
fn ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A `token` character (RFC 9110, section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A weight in thousandths: `0`, `0.5`, `0.125`, `1`, `1.000`; `None` for anything else.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(v: &str) -> bool {
        accepts_gzip(Some(v.as_bytes()))
    }

    #[test]
    fn gzip_is_taken_when_listed_or_covered_by_a_star() {
        for v in [
            "gzip",
            "GZip",
            "x-gzip",
            "gzip, deflate, br, zstd",
            "br;q=1.0, gzip;q=0.8, *;q=0.1",
            "deflate , gzip ; q=0.001",
            "*",
            "identity, *;q=0.5",
            "gzip;Q=1",
            "gzip;q=1.",
            " ,gzip, ",
            "gzip\t;\tq=0.5",
        ] {
            assert!(yes(v), "{v:?} accepts gzip");
        }
    }

    #[test]
    fn refusals_absence_and_other_codings_mean_identity() {
        assert!(!accepts_gzip(None));
        for v in [
            "",
            "identity",
            "br, zstd",
            "deflate",
            "gzip;q=0",
            "gzip;q=0.000",
            "GZIP; q=0.0",
            "gzip;q=0, *",
            "*;q=0",
            "*;q=0, br",
            "gzipx",
            "x-gzip;q=0",
        ] {
            assert!(!yes(v), "{v:?} does not accept gzip");
        }
    }

    #[test]
    fn the_first_weight_given_to_a_coding_is_the_one_read() {
        assert!(!yes("gzip;q=0, gzip"));
        assert!(yes("gzip, gzip;q=0"));
    }

    #[test]
    fn hostile_or_malformed_values_read_as_identity_and_never_panic() {
        let long = format!("{}gzip", "a, ".repeat(MAX_LEN));
        for v in [
            "gzip;q=2",
            "gzip;q=1.5",
            "gzip;q=0.1234",
            "gzip;q=-1",
            "gzip;q=",
            "gzip;q",
            "gzip;q=abc",
            "gzip;level=9",
            "gzip;;q=1",
            ";q=1, gzip",
            "gzip q=1",
            "gz\"ip",
            "gzip;q=0.5;q=1,",
            "gzip;q=1e0",
            "gzip;q=+1",
            "gzip;q=1.001",
            "gzip;q=0x1",
            long.as_str(),
        ] {
            assert!(!yes(v), "{v:?} reads as identity");
        }
        assert!(!accepts_gzip(Some(b"gzip\xff")));
        assert!(!accepts_gzip(Some(&[0u8; 64])));
        // Exactly at the bound still reads.
        let at = format!("{}gzip", " ".repeat(MAX_LEN - 4));
        assert!(yes(&at));
    }
}
