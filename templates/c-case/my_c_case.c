/*
 * my_c_case: a case plugin in C for plugin ABI 1.1, and a template to copy.
 *
 * The case answers GET/HEAD for one path (setting "path", default "/hello-c") with a small
 * text page. The filter (ABI 1.1) stamps every response the server sends, its own 404s
 * included, with "X-My-C-Case: saw <status>".
 *
 * Build: make CASES_INCLUDE=/path/to/plugin-api/include (the folder with case_plugin.h).
 * docs/plugins.md in the server's repository walks through it.
 */
#include "case_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char path[256];
} my_c_case;

static void refuse(const wp_error_sink *err, const char *msg) {
    err->set(err->ctx, (const uint8_t *)msg, strlen(msg));
}

/* The settings arrive as JSON text: the [plugins.my_c_case] table as one compact object,
 * {"path":"/c"}, or "{}" when server.toml has none. A deliberately tiny reader: it walks the
 * keys in turn, takes "path" (a string starting with '/', without '"' or '\\'), and refuses
 * any other key by name, as #[serde(deny_unknown_fields)] does for a Rust plugin. */
static void *create(const wp_host *host, const uint8_t *cfg, size_t len, const wp_error_sink *err) {
    (void)host;
    char json[512], msg[128];
    if (len >= sizeof json) {
        refuse(err, "settings too long: only \"path\" is accepted");
        return NULL;
    }
    memcpy(json, cfg, len);
    json[len] = 0;
    my_c_case *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    strcpy(self->path, "/hello-c");
    const char *p = json + 1; /* past the '{' */
    while (json[0] == '{' && *p == '"') {
        const char *key = p + 1, *end = strchr(key, '"');
        if (!end) break;
        if (end - key != 4 || memcmp(key, "path", 4) != 0) {
            snprintf(msg, sizeof msg, "unknown setting \"%.*s\": the only known one is \"path\"",
                     (int)(end - key), key);
            refuse(err, msg);
            free(self);
            return NULL;
        }
        const char *value = end + 2; /* past the '"' and the ':' */
        size_t n = end[1] == ':' && value[0] == '"' ? strcspn(value + 1, "\"\\") : 0;
        if (n == 0 || value[1] != '/' || value[1 + n] != '"' || n >= sizeof self->path) {
            refuse(err, "path: expected a string starting with '/', without '\"' or '\\'");
            free(self);
            return NULL;
        }
        memcpy(self->path, value + 1, n);
        self->path[n] = 0;
        p = value + 2 + n; /* past the closing '"' */
        if (*p == ',') p++;
    }
    if (json[0] != '{' || strcmp(p, "}") != 0) {
        refuse(err, "settings: expected a table whose only key is \"path\"");
        free(self);
        return NULL;
    }
    return self;
}

static void destroy(void *inst) { free(inst); }

/* Pure and cheap: does this case answer the request? */
static uint8_t test(void *inst, const wp_request *req) {
    const my_c_case *self = inst;
    return req->path.len == strlen(self->path) &&
           memcmp(req->path.ptr, self->path, req->path.len) == 0;
}

static int32_t add_header(const wp_response *resp, const char *name, const char *value) {
    return resp->add_header(resp->ctx, (const uint8_t *)name, strlen(name),
                            (const uint8_t *)value, strlen(value));
}

static int32_t act(void *inst, const wp_request *req, const wp_response *resp) {
    (void)inst;
    char body[512];
    int n = snprintf(body, sizeof body, "Hello from C! You asked for %s with %s.\n",
                     (const char *)req->path.ptr, (const char *)req->method.ptr);
    if (n < 0 || (size_t)n >= sizeof body) return WP_ERROR;
    if (add_header(resp, "Content-Type", "text/plain; charset=utf-8") != 0) return WP_ERROR;
    if (resp->write(resp->ctx, (const uint8_t *)body, (size_t)n) != 0) return WP_ERROR;
    return WP_DONE;
}

/* ABI 1.1: every response head passes here before it is written. */
static int32_t filter_head(void *inst, const wp_request *req, const wp_head *head, void **state) {
    (void)inst;
    (void)req;
    (void)state;
    static const char name[] = "X-My-C-Case";
    char value[32];
    int n = snprintf(value, sizeof value, "saw %u", (unsigned)head->status(head->ctx));
    if (head->set_header(head->ctx, (const uint8_t *)name, strlen(name), (const uint8_t *)value,
                         (size_t)n) != 0)
        return WP_FILTER_ERROR;
    return WP_PASS;
}

static const wp_plugin_desc DESC = {
    .abi_major = WP_ABI_MAJOR,
    .abi_minor = 1, /* the lowest minor whose fields this plugin fills (roles, filter_head) */
    .struct_size = sizeof(wp_plugin_desc),
    .flags = WP_THREAD_SAFE,
    .name = "my_c_case",
    .plugin_version = "0.1.0",
    .allow = "GET, HEAD",
    .create = create,
    .destroy = destroy,
    .test = test,
    .act = act,
    .roles = WP_ROLE_CASE | WP_ROLE_FILTER,
    .filter_head = filter_head,
};

const wp_plugin_desc *wp_plugin_v1(void) { return &DESC; }
