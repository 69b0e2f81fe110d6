/* ljs-join's admin listener (see js_admin.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "js_admin.h"
#include "js_devices.h"
#include "js_server.h"
#include "log.h"

struct js_admin {
	struct js_server *srv;
	struct MHD_Daemon *d;
	int fd;
};

jv js_admin_stats(struct js_server *srv)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_rwlock_rdlock(&srv->lk);
	size_t n = srv->devices ? srv->devices->n : 0;
	pthread_rwlock_unlock(&srv->lk);
	jv o = jv_object_set(jv_object(), jv_string("stats"), jv_string("ljs-join"));
	o = jv_object_set(o, jv_string("time"), jv_number((double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3));
	o = jv_object_set(o, jv_string("devices"), jv_number((double)n));
	jv st = js_stats_json(&srv->stats);
	jv_object_foreach(st, k, v) o = jv_object_set(o, k, v);
	jv_free(st);
	return o;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct js_admin *a = cls;
	(void)version;
	(void)upload;
	if (!*con_cls) { /* headers only so far */
		*con_cls = a;
		return MHD_YES;
	}
	if (*upload_size) { /* a body is not wanted: drop it */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/stats/latency/reset") == 0) {
		/* a measurement's histograms without its warm-up (the counters go on) */
		if (strcmp(method, "POST") != 0)
			return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "POST /stats/latency/reset\n");
		js_stats_reset_latency(&a->srv->stats);
		return reply(c, MHD_HTTP_OK, "text/plain", "latency histograms reset\n");
	}
	if (strcmp(url, "/stats") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "GET /stats\n");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET /stats\n");
	jv line = jv_dump_string(js_admin_stats(a->srv), 0);
	char *body = malloc((size_t)jv_string_length_bytes(jv_copy(line)) + 2);
	if (!body) {
		jv_free(line);
		return MHD_NO;
	}
	strcpy(body, jv_string_value(line));
	strcat(body, "\n");
	jv_free(line);
	enum MHD_Result rc = reply(c, MHD_HTTP_OK, "application/json", body);
	free(body);
	return rc;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0;
	return 0;
}

struct js_admin *js_admin_start(struct js_server *srv, const char *addr, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (!colon || !colon[1] || hl == 0 || hl >= sizeof host) {
		snprintf(err, errlen, "--admin: expected ADDR:PORT (e.g. 127.0.0.1:8081), not %s", addr);
		return NULL;
	}
	memcpy(host, addr, hl);
	host[hl] = 0;
	char *h = host;
	if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST},
	                *res;
	int e = getaddrinfo(h, colon + 1, &hints, &res);
	if (e) {
		snprintf(err, errlen, "--admin %s: %s", addr, gai_strerror(e));
		return NULL;
	}
	if (!is_loopback(res->ai_addr))
		log_warn("--admin %s is not a loopback address: anyone who reaches it reads the counters", addr);
	struct js_admin *a = calloc(1, sizeof *a);
	int one = 1;
	a->srv = srv;
	a->fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(a->fd, res->ai_addr, res->ai_addrlen) != 0 || listen(a->fd, 16) != 0) {
		snprintf(err, errlen, "unable to listen on %s: %s", addr, strerror(errno));
		freeaddrinfo(res);
		if (a->fd >= 0)
			close(a->fd);
		free(a);
		return NULL;
	}
	freeaddrinfo(res);
	a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_request, a,
	                        MHD_OPTION_LISTEN_SOCKET, a->fd, MHD_OPTION_CONNECTION_LIMIT, 16,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
	if (!a->d) {
		snprintf(err, errlen, "unable to start the admin listener on %s", addr);
		close(a->fd);
		free(a);
		return NULL;
	}
	return a;
}

void js_admin_stop(struct js_admin *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->d);
	close(a->fd);
	free(a);
}
