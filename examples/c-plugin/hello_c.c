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

/* A deliberately tiny reader for {"path":"..."}: the settings arrive as JSON text. */
static void *create(const wp_host *host, const uint8_t *cfg, size_t len, const wp_error_sink *err) {
    (void)host;
    hello_c *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    strcpy(self->path, "/hello-c");
    char json[512];
    if (len >= sizeof json) len = sizeof json - 1;
    memcpy(json, cfg, len);
    json[len] = 0;
    const char *key = strstr(json, "\"path\":\"");
    if (key) {
        key += strlen("\"path\":\"");
        const char *end = strchr(key, '"');
        if (!end || end - key >= (long)sizeof self->path || key[0] != '/') {
            const char *msg = "path must be a string starting with '/'";
            err->set(err->ctx, (const uint8_t *)msg, strlen(msg));
            free(self);
            return NULL;
        }
        memcpy(self->path, key, (size_t)(end - key));
        self->path[end - key] = 0;
    } else if (strcmp(json, "{}") != 0) {
        const char *msg = "unknown setting: only \"path\" is accepted";
        err->set(err->ctx, (const uint8_t *)msg, strlen(msg));
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
