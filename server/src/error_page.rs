//! Error answers: every error page the host sends, for its own refusals and for a case's
//! `send_error`, is built here (status, reason, the escaped path and a message).

use crate::errors::RequestError;
use crate::http::{reason, SERVER};
use crate::reply::{Body, Reply};
use plugin_api::helpers::html_escape;

/// The host's answer for `status`: its HTML page naming `path` and `message`.
pub fn reply(status: u16, path: &[u8], message: &str) -> Reply {
    Reply::new(status, Body::Bytes(render(status, path, message)))
        .header("Content-Type", "text/html; charset=utf-8")
}

/// The answer to a request the host refuses.
pub fn refusal(err: RequestError, path: &[u8]) -> Reply {
    reply(err.status(), path, err.message())
}

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
