use std::io::Read;

use super::*;

/// Decodes a gzip member with flate2's decoder, which checks the CRC-32 and the length.
fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

fn whole(head: &[u8], run: &GzRun, tail: &[u8]) -> Vec<u8> {
    let (mut prefix, mut suffix) = (head.to_vec(), tail.to_vec());
    assemble(&mut prefix, run, &mut suffix);
    [&prefix[..], &run.deflate[..], &suffix[..]].concat()
}

/// A list-like run: many similar JSON items, as a catalogue renders them.
fn items(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        if i > 0 {
            v.push(b',');
        }
        v.extend_from_slice(
            format!(
                r#"{{"name":"srv__tool_{i}","description":"Tool number {i} does thing {}","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}}}}}}}}"#,
                i * 7 % 13
            )
            .as_bytes(),
        );
    }
    v
}

#[test]
fn assembled_bodies_decode_to_the_identity_bytes_for_every_id_and_page() {
    let list = items(3000);
    // Three "pages" of the same rendering, each compressed once and reused for many heads.
    let pages = [0..list.len() / 3, list.len() / 3..list.len(), 0..list.len()];
    for page in pages {
        let run_bytes = &list[page];
        let run = GzRun::compress(run_bytes);
        assert_eq!(run.len, run_bytes.len() as u64);
        assert!(
            run.deflate.len() * 4 < run_bytes.len(),
            "a catalogue compresses well ({} of {})",
            run.deflate.len(),
            run_bytes.len()
        );
        for id in [
            &b"1"[..],
            b"\"abc\"",
            b"-9007199254740993",
            b"null",
            b"\"\\u00e9\"",
        ] {
            let head = [
                &br#"{"jsonrpc":"2.0","id":"#[..],
                id,
                br#","result":{"tools":["#,
            ]
            .concat();
            for tail in [&br#"]}}"#[..], br#"],"nextCursor":"o1m-100"}}"#] {
                let body = whole(&head, &run, tail);
                let want = [&head[..], run_bytes, tail].concat();
                assert_eq!(gunzip(&body).unwrap(), want);
            }
        }
    }
}

#[test]
fn empty_head_tail_or_run_still_make_a_valid_member() {
    let list = items(50);
    let run = GzRun::compress(&list);
    assert_eq!(gunzip(&whole(b"", &run, b"")).unwrap(), list);
    assert_eq!(
        gunzip(&whole(b"[", &run, b"")).unwrap(),
        [b"[", &list[..]].concat()
    );
    assert_eq!(
        gunzip(&whole(b"", &run, b"]")).unwrap(),
        [&list[..], b"]"].concat()
    );
    let empty = GzRun::compress(b"");
    assert_eq!(gunzip(&whole(b"{", &empty, b"}")).unwrap(), b"{}");
    assert_eq!(gunzip(&whole(b"", &empty, b"")).unwrap(), b"");
}

#[test]
fn heads_and_tails_longer_than_one_stored_block_are_split() {
    let run = GzRun::compress(&items(10));
    let head = vec![b'h'; STORED_MAX * 2 + 17];
    let tail = vec![b't'; STORED_MAX + 1];
    let want = [&head[..], &items(10)[..], &tail[..]].concat();
    assert_eq!(gunzip(&whole(&head, &run, &tail)).unwrap(), want);
}

#[test]
fn a_wrong_crc_or_length_is_caught_by_the_decoder() {
    // The decoder used above checks the trailer: the identity assertions are not vacuous.
    let run = GzRun::compress(&items(20));
    let mut body = whole(b"{", &run, b"}");
    let n = body.len();
    body[n - 5] ^= 1;
    assert!(gunzip(&body).is_err());
    let mut body = whole(b"{", &run, b"}");
    body[n - 1] ^= 1;
    assert!(gunzip(&body).is_err());
}

#[test]
fn the_run_is_raw_deflate_that_ends_byte_aligned_and_not_final() {
    let list = items(200);
    let run = GzRun::compress(&list);
    // A full flush ends with an empty stored block: 00 00 FF FF after the byte boundary.
    assert!(run.deflate.ends_with(&[0, 0, 0xff, 0xff]));
    // Raw DEFLATE of the run alone (plus a final empty block) inflates to the run.
    let mut raw = run.deflate.to_vec();
    raw.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, list);
}
