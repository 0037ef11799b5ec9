/*
 * case_plugin.h - plugin ABI 1.2 for the case-chain web server.
 *
 * Hand-kept and mirrored one to one by plugin-api/src/abi.rs; the _Static_asserts below
 * check the same sizes the Rust side checks, and CI compiles examples/c-plugin against it.
 *
 * A plugin is a shared library exporting one function:
 *
 *     const wp_plugin_desc *wp_plugin_v1(void);
 *
 * which returns a pointer to a static descriptor and has no side effects. The host reads
 * the descriptor's first fields (abi_major, abi_minor, struct_size) before calling anything
 * else and accepts the plugin iff abi_major == 1 and abi_minor <= the host's minor.
 *
 * Memory: the request and every string in it are borrowed for the duration of one call.
 * Strings are {ptr, len}; len is authoritative and the host also NUL-terminates them.
 * The response callbacks copy what they are given. Neither side frees the other's memory.
 */
#ifndef CASE_PLUGIN_H
#define CASE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_ABI_MAJOR 1
#define WP_ABI_MINOR 2

/* act() results */
#define WP_DONE 0     /* the response is complete */
#define WP_DECLINED 1 /* not mine after all (only before writing): try the next case */
#define WP_ERROR 2    /* failed: 500 if nothing was sent, else the connection closes */
#define WP_CONTINUE 3 /* 1.1: set variables: go on at the next case; rewrote the request: from the first case again */

/* filter_head() results (1.1) */
#define WP_PASS 0         /* done with this response: no body calls */
#define WP_TRANSFORM 1    /* body calls follow with *state; filter_end once */
#define WP_FILTER_ERROR 2 /* failed: the host answers 500 instead */

/* filter_body() results (1.1) */
#define WP_BODY_OK 0    /* all input consumed; output in out[0..out_len] */
#define WP_BODY_MORE 1  /* output window full: call again with in[in_used..], same flags */
#define WP_BODY_ERROR 2 /* failed: the response is cut short */

/* wp_body_io.flags (1.1) */
#define WP_IO_FLUSH 1u /* push out what you hold */
#define WP_IO_END 2u   /* last input: finish (MORE while output remains, then OK) */

/* wp_plugin_desc.roles (1.1) */
#define WP_ROLE_CASE 1u      /* test/act answer requests */
#define WP_ROLE_REWRITE 2u   /* act may return WP_CONTINUE */
#define WP_ROLE_FILTER 4u    /* filter_head sees every response head */
#define WP_ROLE_TRANSFORM 8u /* filter_body transforms bodies */

/* wp_plugin_desc.filter_flags (1.1) */
#define WP_F_CONTENT_CODING 1u /* skip answers with Content-Encoding, no-transform, 205 or 206 */

/* ABI 1.1, wp_head.flags (hosts from November 2026 on): where the body came from. */
#define WP_HEAD_ORIGIN_KNOWN 1u /* the bit below is set by this host */
#define WP_HEAD_HOST_PAGE 2u    /* the host's own page for the status, not a case's body */

/* descriptor flags */
#define WP_THREAD_SAFE 1u /* test/act may run on several threads at once */
#define WP_MAY_BLOCK 2u   /* act may block for long: run it off the event loop */
#define WP_TEST_FAULTS 4u /* 1.2: test may return WP_TEST_FAULT (hosts before 1.2 ignore this
                             flag and take 2 as true: return it only if host->abi_minor >= 2) */

/* test() results: 0 pass, nonzero take (1 by convention), and from 1.2: */
#define WP_TEST_FAULT 2 /* with WP_TEST_FAULTS: the test failed; the host answers 500 */

/* wp_request.fs_kind */
#define WP_KIND_MISSING 0u
#define WP_KIND_FILE 1u
#define WP_KIND_DIR 2u
#define WP_KIND_OTHER 3u

/* wp_host.log levels */
#define WP_LOG_ERROR 1u
#define WP_LOG_WARN 2u
#define WP_LOG_INFO 3u
#define WP_LOG_DEBUG 4u

typedef struct wp_str {
    const uint8_t *ptr; /* never NULL; NUL at ptr[len] in a wp_request (not in what
                           header_at and get_header lend a filter: use len) */
    size_t len;
} wp_str;

typedef struct wp_header {
    wp_str name;
    wp_str value;
} wp_header;

typedef struct wp_request {
    uint32_t struct_size; /* fields past it are absent */
    uint32_t fs_kind;     /* WP_KIND_* */
    wp_str method;        /* "GET" */
    wp_str target;        /* the request-target as sent */
    wp_str path;          /* percent-decoded, normalised, starts with '/' */
    wp_str query;         /* as sent, without '?' */
    wp_str version;       /* "HTTP/1.1" */
    const wp_header *headers;
    size_t header_count;
    wp_str client_addr;
    wp_str server_addr;
    wp_str root;    /* the document root */
    wp_str fs_path; /* root + path, confined to the root */
    uint64_t body_len;
    uint16_t client_port;
    uint16_t server_port;
    uint32_t reserved;
    /* ABI 1.1 (present when struct_size covers them) */
    const wp_header *vars; /* variables earlier cases set (REMOTE_USER, ...) */
    size_t var_count;
} wp_request;

/* Every callback returns 0 on success, -1 when refused. Pass ctx back unchanged. */
typedef struct wp_response {
    uint32_t struct_size;
    uint32_t reserved;
    void *ctx;
    int32_t (*set_status)(void *ctx, uint16_t status); /* 200..599 */
    /* Refused: CR/LF/NUL, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade,
     * Date, Server, Proxy-Connection, and fields past 64 KiB in all. Values are trimmed of
     * whitespace at both ends.
     * Content-Length (digits) is taken as the length of what the case writes: writing less
     * or more breaks the answer off, so the client sees it is incomplete. */
    int32_t (*add_header)(void *ctx, const uint8_t *name, size_t name_len,
                          const uint8_t *value, size_t value_len);
    /* Append body bytes (copied). The host may hold up to 64 KiB before sending, so a
     * short answer gets a Content-Length; len == 0 flushes what was written to the client. */
    int32_t (*write)(void *ctx, const uint8_t *data, size_t len);
    /* The whole body: a file by its absolute path under the document root (req->fs_path);
     * one elsewhere is answered 403. */
    int32_t (*send_file)(void *ctx, const uint8_t *path, size_t path_len);
    int32_t (*send_error)(void *ctx, uint16_t status, const uint8_t *message, size_t len);
    ssize_t (*read_body)(void *ctx, uint8_t *buf, size_t cap);
    int32_t (*redirect)(void *ctx, const uint8_t *target, size_t len);
    /* ABI 1.1 (present when struct_size covers them) */
    /* Go on with a changed request ("/path?query"): decoded, confined and looked up again;
     * method, headers and body kept. Before writing anything; then return WP_CONTINUE. */
    int32_t (*rewrite)(void *ctx, const uint8_t *target, size_t len);
    /* Attach a variable ([A-Z][A-Z0-9_]*, <= 64 bytes) later cases and CGI scripts see. */
    int32_t (*set_var)(void *ctx, const uint8_t *name, size_t name_len, const uint8_t *value,
                       size_t value_len);
} wp_response;

/* ABI 1.1: a response head a filter edits. 0 on success, -1 when refused. The host owns
 * Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer, Date,
 * Server, Content-Range, Accept-Ranges and Proxy-Connection. Values set are trimmed of
 * whitespace at both ends. The strings header_at and get_header lend are not
 * NUL-terminated. */
typedef struct wp_head {
    uint32_t struct_size;
    uint32_t flags; /* WP_HEAD_*; zero from hosts before November 2026 (it was reserved) */
    void *ctx;
    uint16_t (*status)(void *ctx);
    int32_t (*set_status)(void *ctx, uint16_t status); /* 200..599, not 206/304 */
    size_t (*header_count)(void *ctx);
    int32_t (*header_at)(void *ctx, size_t i, wp_str *name, wp_str *value);
    int32_t (*get_header)(void *ctx, const uint8_t *name, size_t len, wp_str *value);
    int32_t (*set_header)(void *ctx, const uint8_t *name, size_t name_len,
                          const uint8_t *value, size_t value_len);
    int32_t (*append_header)(void *ctx, const uint8_t *name, size_t name_len,
                             const uint8_t *value, size_t value_len);
    int32_t (*remove_header)(void *ctx, const uint8_t *name, size_t len);
    int32_t (*vary_add)(void *ctx, const uint8_t *token, size_t len);
    int32_t (*replace_body_bytes)(void *ctx, const uint8_t *data, size_t len);
    /* A file by its absolute path under the document root, opened now; -1 (nothing
     * replaced) for any other path or one that cannot be opened. */
    int32_t (*replace_body_file)(void *ctx, const uint8_t *path, size_t len);
    int64_t (*body_length)(void *ctx); /* -1: unknown */
} wp_head;

/* ABI 1.1: one filter_body call's windows, lent for the call only. */
typedef struct wp_body_io {
    const uint8_t *in;
    size_t in_len;
    size_t in_used; /* set by the filter */
    uint8_t *out;
    size_t out_cap;
    size_t out_len; /* set by the filter */
    uint32_t flags; /* WP_IO_* */
    uint32_t reserved;
} wp_body_io;

typedef struct wp_error_sink {
    void *ctx;
    void (*set)(void *ctx, const uint8_t *msg, size_t len);
} wp_error_sink;

/* Lent to one instance by create: valid until its destroy returns (or create refuses). */
typedef struct wp_host {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t reserved;
    void (*log)(const struct wp_host *host, uint32_t level, const uint8_t *msg, size_t len);
    void *ctx;
    /* ABI 1.1: the host's counters as JSON, written only when cap holds all of it;
     * returns the full length (call again with that much room). */
    size_t (*stats)(const struct wp_host *host, uint8_t *out, size_t cap);
    /* ABI 1.1 (struct_size >= 56): the document root, canonical, for checking settings in
     * create; valid as long as the table. */
    wp_str root;
} wp_host;

typedef struct wp_plugin_desc {
    /* Frozen prefix: never changes within or across major versions. */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(wp_plugin_desc) */
    uint32_t flags;       /* WP_THREAD_SAFE | WP_MAY_BLOCK | WP_TEST_FAULTS */
    const char *name;     /* must equal the name in server.toml: [a-z0-9_]+ */
    const char *plugin_version;
    /* ABI 1.0 */
    const char *allow; /* methods answered, as an Allow value ("GET, HEAD"), or "*" */
    void *(*create)(const wp_host *host, const uint8_t *cfg_json, size_t cfg_len,
                    const wp_error_sink *err); /* NULL = refused, reason via err */
    void (*destroy)(void *inst);
    uint8_t (*test)(void *inst, const wp_request *req);                         /* pure */
    int32_t (*act)(void *inst, const wp_request *req, const wp_response *resp); /* WP_* */
    /* ABI 1.1 (a filter-only plugin may leave test and act NULL) */
    uint32_t roles;        /* WP_ROLE_* */
    uint32_t filter_flags; /* WP_F_* */
    int32_t (*filter_head)(void *inst, const wp_request *req, const wp_head *head,
                           void **state); /* WP_PASS | WP_TRANSFORM | WP_FILTER_ERROR */
    int32_t (*filter_body)(void *inst, void *state, wp_body_io *io); /* WP_BODY_* */
    void (*filter_end)(void *inst, void *state, uint8_t aborted);    /* exactly once */
} wp_plugin_desc;

#if defined(__LP64__)
_Static_assert(sizeof(wp_str) == 16, "wp_str layout");
_Static_assert(sizeof(wp_header) == 32, "wp_header layout");
_Static_assert(sizeof(wp_request) == 200, "wp_request layout");
_Static_assert(sizeof(wp_response) == 88, "wp_response layout");
_Static_assert(sizeof(wp_head) == 112, "wp_head layout");
_Static_assert(sizeof(wp_body_io) == 56, "wp_body_io layout");
_Static_assert(sizeof(wp_error_sink) == 16, "wp_error_sink layout");
_Static_assert(sizeof(wp_host) == 56, "wp_host layout");
_Static_assert(sizeof(wp_plugin_desc) == 104, "wp_plugin_desc layout");
#endif

/* The one symbol a plugin exports. */
const wp_plugin_desc *wp_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* CASE_PLUGIN_H */
