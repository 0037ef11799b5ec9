/*
 * hello_c: a case plugin written in C, and a template to copy.
 *
 * It answers GET/HEAD for one path (setting "path", default "/hello-c") with a small
 * text page. Build: make (or cc -shared -fPIC -I../../plugin-api/include -o libhello_c.so
 * hello_c.c), copy libhello_c.so into plugins/, and add "hello_c" to cases in server.toml.
 * It compiles against the ABI 1.0 header and the 1.1 one alike; templates/c-case/ adds a
 * response filter (ABI 1.1).
 */
#include "case_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char path[256];
} hello_c;

static void refuse(const wp_error_sink *err, const char *msg) {
    err->set(err->ctx, (const uint8_t *)msg, strlen(msg));
}

/* The settings arrive as JSON text: the [plugins.hello_c] table as one compact object,
 * {"path":"/c"}, or "{}" when there is none. A deliberately tiny reader: it walks the keys
 * in turn, takes "path" (a string starting with '/', without '"' or '\\'), and refuses any
 * other key by name. */
static void *create(const wp_host *host, const uint8_t *cfg, size_t len, const wp_error_sink *err) {
    (void)host;
    char json[512], msg[128];
    if (len >= sizeof json) {
        refuse(err, "settings too long: only \"path\" is accepted");
        return NULL;
    }
    memcpy(json, cfg, len);
    json[len] = 0;
    hello_c *self = calloc(1, sizeof *self);
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

static uint8_t test(void *inst, const wp_request *req) {
    const hello_c *self = inst;
    return req->path.len == strlen(self->path) &&
           memcmp(req->path.ptr, self->path, req->path.len) == 0;
}

static int32_t act(void *inst, const wp_request *req, const wp_response *resp) {
    (void)inst;
    char body[512];
    int n = snprintf(body, sizeof body, "Hello from C! You asked for %s with %s.\n",
                     (const char *)req->path.ptr, (const char *)req->method.ptr);
    static const char ct[] = "Content-Type", tp[] = "text/plain; charset=utf-8";
    if (resp->add_header(resp->ctx, (const uint8_t *)ct, strlen(ct), (const uint8_t *)tp,
                         strlen(tp)) != 0)
        return WP_ERROR;
    if (resp->write(resp->ctx, (const uint8_t *)body, (size_t)n) != 0) return WP_ERROR;
    return WP_DONE;
}

static const wp_plugin_desc DESC = {
    .abi_major = WP_ABI_MAJOR,
    .abi_minor = 0, /* the lowest minor it uses: nothing past 1.0, so any 1.x host loads it */
    .struct_size = sizeof(wp_plugin_desc),
    .flags = WP_THREAD_SAFE,
    .name = "hello_c",
    .plugin_version = "1.0.0",
    .allow = "GET, HEAD",
    .create = create,
    .destroy = destroy,
    .test = test,
    .act = act,
};

const wp_plugin_desc *wp_plugin_v1(void) { return &DESC; }
