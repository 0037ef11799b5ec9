//! Why the host refuses a request, before or instead of any case: one variant per cause, each
//! with its status and the sentence the error page shows.

/// A request the host answers itself with an error (or, for [`ClientGone`], not at all).
///
/// [`ClientGone`]: RequestError::ClientGone
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RequestError {
    /// The request line is longer than `max_request_line`.
    UriTooLong,
    /// A header field, the number of fields or the whole head is over its limit.
    HeadTooLarge,
    /// The request line or a header field is not HTTP/1.x syntax.
    Malformed,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1 (e.g. an HTTP/2 preface).
    Version,
    /// The head did not arrive within `header_timeout`.
    HeadTimeout,
    /// Host is missing (HTTP/1.1), repeated, or holds bytes no host name has.
    BadHost,
    /// Content-Length and Transfer-Encoding together, differing or malformed lengths,
    /// chunked not last, or Transfer-Encoding on HTTP/1.0: shapes that smuggle requests.
    BadFraming,
    /// A transfer coding other than chunked.
    UnknownCoding,
    /// An Expect value other than `100-continue`.
    Expectation,
    /// The body (declared or received) is larger than `max_body`.
    BodyTooLarge,
    /// The chunked body's sizes or delimiters are malformed.
    BadChunk,
    /// The chunked body's trailer section is over its limit.
    TrailersTooLarge,
    /// The body stalled for `body_timeout` or arrived slower than `body_min_rate`.
    BodyTimeout,
    /// The client closed the connection before its body was complete: nothing to answer.
    ClientGone,
    /// A method token the host does not know, or CONNECT.
    NotImplemented,
    /// `*` as the target of a method other than OPTIONS.
    AsteriskNotOptions,
    /// The target is neither a path nor an absolute URL.
    NotAPath,
    /// An absolute-form target's host is missing or invalid, or it has userinfo or a fragment.
    BadAuthority,
    /// The path has bad percent-encoding, a NUL, or `..` above the root.
    BadPath,
    /// Local redirects went round more than the budget allows.
    RedirectLoop,
    /// A case's local redirect names no path in the site (`..` above the root, a NUL).
    BadRedirect,
    /// Cases rewrote the target more often than the budget allows.
    RewriteLoop,
    /// The TLS server name (SNI) and the Host name different sites.
    Misdirected,
}

impl RequestError {
    /// The status code sent (for `ClientGone`, the one logged: nginx's 499).
    pub fn status(self) -> u16 {
        use RequestError::*;
        match self {
            UriTooLong => 414,
            HeadTooLarge | TrailersTooLarge => 431,
            Malformed | BadHost | BadFraming | BadChunk | AsteriskNotOptions | NotAPath
            | BadAuthority | BadPath => 400,
            Version => 505,
            HeadTimeout | BodyTimeout => 408,
            UnknownCoding | NotImplemented => 501,
            Expectation => 417,
            BodyTooLarge => 413,
            ClientGone => 499,
            RedirectLoop | BadRedirect | RewriteLoop => 500,
            Misdirected => 421,
        }
    }

    /// What happened, in one sentence for the error page.
    pub fn message(self) -> &'static str {
        use RequestError::*;
        match self {
            UriTooLong => "the request line is longer than this server accepts",
            HeadTooLarge => "the request headers are larger than this server accepts",
            Malformed => "the request could not be read",
            Version => "this server speaks HTTP/1.0 and HTTP/1.1",
            HeadTimeout => "the request head took too long",
            BadHost => "a valid Host header is required",
            BadFraming => "the request body framing is invalid",
            UnknownCoding => "the request body's transfer coding is not supported",
            Expectation => "only 100-continue is supported",
            BodyTooLarge => "the request body is larger than this server accepts",
            BadChunk => "the request body is malformed",
            TrailersTooLarge => "the request trailers are larger than this server accepts",
            BodyTimeout => "the request body took too long",
            ClientGone => "the client closed the connection",
            NotImplemented => "this method is not implemented",
            AsteriskNotOptions => "'*' is only for OPTIONS",
            NotAPath => "the request target is not a path",
            BadAuthority => {
                "the request target's host is invalid, or has a user name or a fragment"
            }
            BadPath => "the path is malformed or leaves the root",
            RedirectLoop => "too many local redirects",
            BadRedirect => "a local redirect leads outside the site",
            RewriteLoop => "the request was rewritten too many times",
            Misdirected => "the TLS server name (SNI) and the Host header lead to different sites",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for RequestError {}
