/* ljs-join's admin listener: plain HTTP GET /stats, the counters as one JSON line. Meant for a
 * loopback address: it needs no client certificate and answers anyone who reaches it. */
#ifndef JS_ADMIN_H
#define JS_ADMIN_H

#include <stddef.h>

#include <jv.h>

struct js_server;
struct js_admin;

/* Listen on addr ("127.0.0.1:8081", "[::1]:8081"); NULL with a reason in err. */
struct js_admin *js_admin_start(struct js_server *srv, const char *addr, char *err, size_t errlen);
void js_admin_stop(struct js_admin *a);

/* The stats line: {"stats":"ljs-join","time":..,"devices":N, the counters of js_stats_json}. */
jv js_admin_stats(struct js_server *srv);

#endif
