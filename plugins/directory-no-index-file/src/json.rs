//! The listing as JSON, shaped like nginx's `autoindex_format json`: an array of
//! `{"name", "type": "directory"|"file", "mtime": RFC 1123, "size", "url"}`, size on files
//! only, and the link the HTML page has (Caddy's `url`), which reaches a name that is not
//! UTF-8 and so shows in `name` with U+FFFD.

use crate::clock::utc;
use crate::entries::Entry;
use std::fmt::Write;

/// The JSON text for `list`, in its order.
pub fn render(list: &[Entry]) -> String {
    let mut out = String::with_capacity(list.len() * 96 + 4);
    out.push_str("[\n");
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str("{ \"name\":\"");
        escape(&mut out, &e.name);
        out.push_str(if e.dir {
            "\", \"type\":\"directory\", \"mtime\":\""
        } else {
            "\", \"type\":\"file\", \"mtime\":\""
        });
        utc(e.mtime).rfc1123(&mut out);
        out.push('"');
        if !e.dir {
            let _ = write!(out, ", \"size\":{}", e.size);
        }
        out.push_str(", \"url\":\"");
        escape(&mut out, &crate::html::link_segment(&e.raw));
        out.push_str(if e.dir { "/\" }" } else { "\" }" });
    }
    if !list.is_empty() {
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

/// Escape a JSON string's content (RFC 8259 section 7).
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn entries_are_objects_like_nginx_writes_them() {
        let list = [
            Entry {
                name: "sub".into(),
                raw: b"sub".to_vec(),
                dir: true,
                size: 4096,
                mtime: 1_000_000_000,
            },
            Entry {
                name: "a \"q\"\\\n\u{fffd}.txt".into(),
                raw: b"a \"q\"\\\n\xff.txt".to_vec(),
                dir: false,
                size: 12,
                mtime: 0,
            },
        ];
        assert_eq!(
            render(&list),
            "[\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Sun, 09 Sep 2001 01:46:40 GMT\", \"url\":\"sub/\" },\n\
             { \"name\":\"a \\\"q\\\"\\\\\\n\u{fffd}.txt\", \"type\":\"file\", \"mtime\":\"Thu, 01 Jan 1970 00:00:00 GMT\", \"size\":12, \"url\":\"a%20%22q%22%5C%0A%FF.txt\" }\n]\n"
        );
        assert_eq!(render(&[]), "[\n]\n");
    }
}
