//! The one place every error page is rendered: status, reason, the escaped path and message.

use crate::http::{reason, SERVER};
use plugin_api::helpers::html_escape;

/// An HTML error page for `status`, naming the request path (escaped) and a message.
pub fn render(status: u16, path: &[u8], message: &str) -> Vec<u8> {
    let title = format!("{status} {}", reason(status));
    let path = html_escape(&String::from_utf8_lossy(path));
    let message = html_escape(message);
    let detail = if message.is_empty() {
        format!("<p>Error accessing <code>{path}</code>.</p>")
    } else {
        format!("<p>Error accessing <code>{path}</code>: {message}</p>")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{detail}\n<hr><address>{SERVER}</address>\n</body>\n</html>\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_path_and_message_are_escaped() {
        let page = String::from_utf8(super::render(404, b"/<script>", "a & b")).unwrap();
        assert!(page.contains("<h1>404 Not Found</h1>"));
        assert!(page.contains("/&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(!page.contains("<script>"));
    }
}
