//! Helpers shared by two or more cases (the chapter's `base_case`), and nothing else.

use std::path::{Path, PathBuf};

/// The `index.html` inside a directory (directory_index_file and directory_no_index_file).
pub fn index_path(dir: &Path) -> PathBuf {
    dir.join("index.html")
}

/// Escape text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet of every page the server itself draws (error pages and folder listings):
/// the system font, light and dark (`color-scheme`), long names wrapped, no external assets.
pub const STYLE: &str = concat!(
    ":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;",
    "--bg:#fff;--link:#0550ae;--hover:#f6f8fa}",
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;",
    "--line:#3d444d;--bg:#0d1117;--link:#4493f8;--hover:#151b23}}",
    "*{box-sizing:border-box}",
    "body{margin:0 auto;max-width:60rem;padding:1rem 1.25rem;color:var(--fg);",
    "background:var(--bg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}",
    "a{color:var(--link);text-decoration:none}a:hover,a:focus{text-decoration:underline}",
    "h1{font-size:1.375rem;line-height:1.3;margin:.25rem 0 1rem;overflow-wrap:anywhere}",
    "nav{color:var(--muted);overflow-wrap:anywhere}",
    "table{width:100%;border-collapse:collapse}",
    "th,td{padding:.4rem .6rem;text-align:left;vertical-align:baseline}",
    "th{border-bottom:2px solid var(--line);white-space:nowrap;font-weight:600}",
    "td{border-bottom:1px solid var(--line)}tbody tr:hover{background:var(--hover)}",
    ".name{width:100%;overflow-wrap:anywhere}.dir a{font-weight:600}",
    ".size,.date{white-space:nowrap;text-align:right;color:var(--muted);",
    "font-variant-numeric:tabular-nums}",
    "code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;",
    "overflow-wrap:anywhere}",
    ".lead{font-size:1.125rem}.muted,footer{color:var(--muted)}",
    "footer{margin-top:2rem;font-size:.875rem}",
    "@media (max-width:40rem){body{padding:.75rem}th,td{padding:.4rem .3rem}",
    "td.date{font-size:.8125rem}}",
);

/// The start of a page drawn with [`STYLE`]: doctype, charset, viewport, the title (escaped
/// here) and the stylesheet, ending just inside `<body>`.
pub fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        html_escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_escapes_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_page_starts_with_an_escaped_title_a_viewport_and_the_stylesheet() {
        let p = page_start("<x>");
        assert!(p.contains("<title>&lt;x&gt;</title>"), "{p}");
        assert!(p.contains("name=\"viewport\""));
        assert!(p.contains("color-scheme:light dark") && p.ends_with("<body>\n"));
    }

    #[test]
    fn index_path_appends_index_html() {
        assert_eq!(index_path(Path::new("/r/d")), Path::new("/r/d/index.html"));
    }
}
