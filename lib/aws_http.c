#define _GNU_SOURCE /* asprintf */
#include "aws_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

#define BODY_MAX (4u << 20) /* far beyond any shadow document (8 KB of state) */
#define BACKOFF_BASE 0.1

struct aws_http {
	CURL *curl;
	struct aws_http_opts o;
	char *base;     /* scheme://host[:port], no trailing slash */
	char *hostport; /* the Host header */
	long connections;
	char curl_err[CURL_ERROR_SIZE];
	struct aws_http_resp *cur; /* the answer being received */
	double retry_after;        /* from the last answer's Retry-After, seconds, or -1 */
};

static int curl_ready;

long aws_http_connections(const struct aws_http *h)
{
	return h->connections;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct aws_http *h = arg;
	struct aws_http_resp *r = h->cur;
	size_t len = size * n;
	if (r->len + len > BODY_MAX)
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	char *p = realloc(r->body, r->len + len + 1);
	if (!p)
		return 0;
	memcpy(p + r->len, data, len);
	r->len += len;
	p[r->len] = 0;
	r->body = p;
	return len;
}

/* Copy a header's value (trimmed) when the line is "name: value". */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return 0;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t n = (size_t)(end - v) < outlen - 1 ? (size_t)(end - v) : outlen - 1;
	memcpy(out, v, n);
	out[n] = 0;
	return 1;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct aws_http *h = arg;
	size_t len = size * n;
	char v[128];
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new answer (after a 100, a redirect) */
		h->cur->error_type[0] = 0;
		h->retry_after = -1;
	} else if (header_value(data, len, "x-amzn-ErrorType", h->cur->error_type, sizeof h->cur->error_type)) {
		h->cur->error_type[strcspn(h->cur->error_type, ":")] = 0;
	} else if (header_value(data, len, "Retry-After", v, sizeof v)) {
		char *end;
		double s = strtod(v, &end);
		if (end != v && s >= 0)
			h->retry_after = s;
	}
	return len;
}

/* The stop flag, or SIGTERM/SIGINT waiting while the caller keeps them blocked: either way
 * the tool is asked to end, and waiting on AWS must not delay that. */
static int stopping(const struct aws_http *h)
{
	if (h->o.stop && *h->o.stop)
		return 1;
	sigset_t pending;
	return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return stopping(arg); /* non-zero aborts the transfer */
}

struct aws_http *aws_http_new(const struct aws_http_opts *o, char *err, size_t errlen)
{
	if (!o->endpoint || !*o->endpoint) {
		snprintf(err, errlen, "no endpoint");
		return NULL;
	}
	if (!o->creds && !(o->cert && o->key)) {
		snprintf(err, errlen, "neither AWS credentials nor a client certificate and key");
		return NULL;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "unable to initialize libcurl");
			return NULL;
		}
		curl_ready = 1;
	}
	struct aws_http *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->o = *o;
	const char *ep = o->endpoint, *sep = strstr(ep, "://");
	const char *hp = sep ? sep + 3 : ep;
	size_t hplen = strcspn(hp, "/");
	if (sep && strncmp(ep, "https://", 8) != 0 && strncmp(ep, "http://", 7) != 0) {
		snprintf(err, errlen, "endpoint %s: only https:// (or http:// for tests) is supported", ep);
		free(h);
		return NULL;
	}
	if (hplen == 0 || (hp[hplen] && hp[hplen + 1])) {
		snprintf(err, errlen, "endpoint %s: give scheme://host[:port] with no path", ep);
		free(h);
		return NULL;
	}
	if (asprintf(&h->hostport, "%.*s", (int)hplen, hp) < 0 ||
	    asprintf(&h->base, "%.*s%.*s", sep ? (int)(hp - ep) : 8, sep ? ep : "https://", (int)hplen, hp) < 0) {
		snprintf(err, errlen, "out of memory");
		free(h);
		return NULL;
	}
	h->curl = curl_easy_init();
	if (!h->curl) {
		snprintf(err, errlen, "unable to create a libcurl handle");
		aws_http_free(h);
		return NULL;
	}
	CURL *c = h->curl;
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout > 0 ? o->timeout : 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	if (o->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
	if (!o->creds) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return h;
}

void aws_http_free(struct aws_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->hostport);
	free(h);
}

void aws_http_resp_free(struct aws_http_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

static int retryable_status(long s)
{
	return s == 429 || s >= 500;
}

static int retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_WRITE_ERROR: /* an answer over BODY_MAX */
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_ABORTED_BY_CALLBACK: /* stopping */
		return 0;
	default:
		return 1;
	}
}

/* Sleep s seconds in small steps so that the stop flag ends the wait. 0, or -1 when stopped. */
static int pause_for(const struct aws_http *h, double s)
{
	while (s > 0) {
		if (stopping(h))
			return -1;
		double step = s < 0.05 ? s : 0.05;
		struct timespec ts = {0, (long)(step * 1e9)};
		nanosleep(&ts, NULL);
		s -= step;
	}
	return stopping(h) ? -1 : 0;
}

/* Full jitter (AWS's recommendation): uniform in [0, min(max, base * 2^retry)). */
static double backoff(const struct aws_http *h, int retry)
{
	double cap = h->o.backoff_max > 0 ? h->o.backoff_max : 20;
	double d = BACKOFF_BASE;
	for (int i = 0; i < retry && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	uint32_t rnd = 0;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof rnd) < 0)
		rnd = (uint32_t)rand();
	return d * ((double)rnd / 4294967296.0);
}

static struct curl_slist *build_headers(struct aws_http *h, const char *method, const char *path,
					const struct aws_param *params, size_t np, const struct aws_header *hdrs,
					size_t nh, const void *body, size_t len, char **query)
{
	struct curl_slist *list = NULL, *t;
	char *line = NULL;
	*query = NULL;
#define ADD(...)                                                     \
	do {                                                         \
		if (asprintf(&line, __VA_ARGS__) < 0)                \
			goto fail;                                   \
		if (!(t = curl_slist_append(list, line)))            \
			goto fail;                                   \
		list = t;                                            \
		free(line);                                          \
		line = NULL;                                         \
	} while (0)
	ADD("Host: %s", h->hostport);
	for (size_t i = 0; i < nh; i++)
		ADD("%s: %s", hdrs[i].name, hdrs[i].value);
	ADD("Expect:"); /* no 100-continue round trip for larger bodies */
	if (h->o.creds) {
		struct aws_sigv4_req req = {.method = method, .host = h->hostport, .path = path, .params = params,
					    .nparams = np, .headers = hdrs, .nheaders = nh, .body = body, .body_len = len};
		struct aws_sigv4_result s;
		if (aws_sigv4_sign(&req, h->o.creds, h->o.service, time(NULL), &s) < 0)
			goto fail;
		*query = s.query;
		s.query = NULL;
		int ok = asprintf(&line, "X-Amz-Date: %s", s.amz_date) >= 0;
		if (ok && (t = curl_slist_append(list, line)))
			list = t;
		else
			ok = 0;
		free(line);
		line = NULL;
		if (ok && asprintf(&line, "Authorization: %s", s.authorization) >= 0 && (t = curl_slist_append(list, line)))
			list = t;
		else
			ok = 0;
		free(line);
		line = NULL;
		aws_sigv4_result_free(&s);
		if (!ok)
			goto fail;
		if (h->o.creds->session_token)
			ADD("X-Amz-Security-Token: %s", h->o.creds->session_token);
	} else {
		if (!(*query = aws_sigv4_query(params, np)))
			goto fail;
	}
	return list;
fail:
	free(line);
	free(*query);
	*query = NULL;
	curl_slist_free_all(list);
	return NULL;
#undef ADD
}

int aws_http_call(struct aws_http *h, const char *method, const char *path, const struct aws_param *params,
		  size_t np, const struct aws_header *hdrs, size_t nh, const void *body, size_t len,
		  struct aws_http_resp *r)
{
	memset(r, 0, sizeof *r);
	CURL *c = h->curl;
	for (int retry = 0;; retry++) {
		free(r->body);
		r->body = calloc(1, 1);
		r->len = 0;
		r->status = 0;
		r->error_type[0] = 0;
		r->error[0] = 0;
		if (!r->body) {
			snprintf(r->error, sizeof r->error, "out of memory");
			r->permanent = 1;
			return -1;
		}
		char *query = NULL, *url = NULL;
		/* signed afresh for each attempt: X-Amz-Date must stay near the server's clock */
		struct curl_slist *list = build_headers(h, method, path, params, np, hdrs, nh, body, len, &query);
		if (!list || asprintf(&url, "%s%s%s%s", h->base, path, *query ? "?" : "", query) < 0) {
			curl_slist_free_all(list);
			free(query);
			snprintf(r->error, sizeof r->error, "unable to build the request: out of memory");
			r->permanent = 1;
			return -1;
		}
		free(query);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
		if (strcmp(method, "GET") == 0) {
			curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
		}
		h->cur = r;
		h->retry_after = -1;
		h->curl_err[0] = 0;
		CURLcode rc = curl_easy_perform(c);
		r->attempts++;
		long nc = 0;
		if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
			h->connections += nc;
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(list);
		h->cur = NULL;
		int again;
		if (rc == CURLE_OK) {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
			again = retryable_status(r->status);
			if (again)
				log_warn("%s %s: HTTP %ld%s%s", method, url, r->status, r->error_type[0] ? " " : "",
					 r->error_type);
		} else {
			snprintf(r->error, sizeof r->error, "%s", h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
			again = retryable_curl(rc);
			r->permanent = !again;
			log_warn("%s %s: %s", method, url, r->error);
		}
		free(url);
		if (!again)
			return rc == CURLE_OK ? 0 : -1;
		if (h->o.retries >= 0 && retry >= h->o.retries)
			return rc == CURLE_OK ? 0 : -1;
		double wait = backoff(h, retry);
		if (h->retry_after > wait)
			wait = h->retry_after < 60 ? h->retry_after : 60;
		log_info("retry %d in %.2f s", retry + 1, wait);
		if (pause_for(h, wait) < 0) {
			snprintf(r->error, sizeof r->error, "stopped while retrying");
			r->permanent = 1;
			return -1;
		}
	}
}
