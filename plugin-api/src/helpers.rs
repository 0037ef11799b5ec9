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
    fn index_path_appends_index_html() {
        assert_eq!(index_path(Path::new("/r/d")), Path::new("/r/d/index.html"));
    }
}
