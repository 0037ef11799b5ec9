//! What a request asks to see: HTML or JSON (`?format=` or `Accept`), and the order
//! (`?sort=name|size|date&order=asc|desc`).

/// The body's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    /// An array of `{name, type, mtime, size}` objects, as nginx's `autoindex_format json`.
    Json,
}

/// The column a listing is sorted by (folders always come first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Name,
    Size,
    Date,
}

impl Key {
    pub const ALL: [Key; 3] = [Key::Name, Key::Size, Key::Date];

    /// The word used in the query string.
    pub fn word(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Size => "size",
            Key::Date => "date",
        }
    }

    /// The order a first click on this column asks for: names A to Z, the biggest and the
    /// newest first.
    pub fn first_desc(self) -> bool {
        self != Key::Name
    }
}

/// One way of showing a folder; also the page cache's key beside the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    pub format: Format,
    pub key: Key,
    pub desc: bool,
}

impl View {
    /// Read the query string; without `format=` the `Accept` header decides. Unknown values
    /// are ignored, as nginx ignores arguments it does not know.
    pub fn from_request(query: &[u8], accept: Option<&[u8]>) -> View {
        let mut view = View {
            format: match accept {
                Some(a) if wants_json(a) => Format::Json,
                _ => Format::Html,
            },
            key: Key::Name,
            desc: false,
        };
        let mut order = None;
        for pair in query.split(|&b| b == b'&') {
            match pair {
                b"format=json" => view.format = Format::Json,
                b"format=html" => view.format = Format::Html,
                b"sort=name" => view.key = Key::Name,
                b"sort=size" => view.key = Key::Size,
                b"sort=date" => view.key = Key::Date,
                b"order=asc" => order = Some(false),
                b"order=desc" => order = Some(true),
                _ => {}
            }
        }
        view.desc = order.unwrap_or(false);
        view
    }
}

/// Does `Accept` rank `application/json` above `text/html` (RFC 9110 section 12.5.1)?
/// Browsers never list JSON, so they get the page.
fn wants_json(accept: &[u8]) -> bool {
    let text = String::from_utf8_lossy(accept);
    let (mut json, mut html) = (0.0f32, 0.0f32);
    for range in text.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/json" => json = json.max(q),
            "text/html" => html = html.max(q),
            _ => {}
        }
    }
    json > 0.0 && json >= html
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_query_string_picks_the_order_and_the_format() {
        let v = View::from_request(b"sort=size&order=desc", None);
        assert_eq!((v.format, v.key, v.desc), (Format::Html, Key::Size, true));
        let v = View::from_request(b"format=json&sort=date&bogus=1", None);
        assert_eq!((v.format, v.key, v.desc), (Format::Json, Key::Date, false));
        let v = View::from_request(b"sort=weird&order=up", None);
        assert_eq!((v.key, v.desc), (Key::Name, false));
    }

    #[test]
    fn accept_chooses_json_only_when_it_is_preferred() {
        let json = |a: &str| View::from_request(b"", Some(a.as_bytes())).format == Format::Json;
        assert!(json("application/json"));
        assert!(json("application/json, text/html;q=0.5"));
        assert!(!json(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!json("text/html, application/json;q=0.9"));
        assert!(!json("application/json;q=0"));
        assert!(
            !View::from_request(b"format=html", Some(b"application/json"))
                .format
                .eq(&Format::Json)
        );
    }
}
