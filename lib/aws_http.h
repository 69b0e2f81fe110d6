/* HTTPS requests to an AWS endpoint through one reused libcurl easy handle (keep-alive), signed
 * with SigV4 or authenticated with an X.509 client certificate, retried with exponential backoff
 * and full jitter on 429, 5xx and connection failures. One request at a time: the caller's
 * order is the order on the wire, and a caller that waits here reads no more input. */
#ifndef AWS_HTTP_H
#define AWS_HTTP_H

#include <signal.h>
#include <stddef.h>

#include "aws_creds.h"
#include "aws_sigv4.h"

struct aws_http_opts {
	const char *endpoint;          /* https://host[:port], http://host:port, or host[:port] */
	const struct aws_creds *creds; /* sign with SigV4 when set ... */
	const char *service;           /* ... for this service ("iotdata", "iot", "kms") */
	const char *cert, *key;        /* ... else this client certificate and key (PEM files) */
	const char *cacert;            /* CA bundle to trust instead of the system's, or NULL */
	int retries;                   /* retries after the first attempt; -1: no limit */
	double backoff_max;            /* seconds; the base is 0.1 s, doubled per retry */
	long connect_timeout, timeout; /* seconds per attempt */
	volatile sig_atomic_t *stop;   /* when set, waits and retries end at once */
};

struct aws_http_resp {
	long status;          /* HTTP status of the last answer, 0 when none came */
	char *body;           /* the answer's body, NUL-terminated (never NULL after a call) */
	size_t len;
	char error_type[128]; /* x-amzn-ErrorType without its ":..." tail, or "" */
	char error[256];      /* why there was no answer */
	int attempts;
	int permanent;        /* no answer, and retrying cannot help (TLS trust, bad URL) */
};

struct aws_http;

/* NULL with a message in err (a configuration error) on failure. */
struct aws_http *aws_http_new(const struct aws_http_opts *o, char *err, size_t errlen);
void aws_http_free(struct aws_http *h);

/* Send one request (path already percent-encoded, params not encoded) and wait for a final
 * answer: 0 with r->status set (2xx, 4xx other than 429, or a retryable status once the retries
 * ran out), or -1 when no answer came (r->error says why; r->permanent when retrying is futile,
 * or the stop flag ended it). Free r with aws_http_resp_free either way. */
int aws_http_call(struct aws_http *h, const char *method, const char *path, const struct aws_param *params,
		  size_t nparams, const struct aws_header *headers, size_t nheaders, const void *body, size_t len,
		  struct aws_http_resp *r);
void aws_http_resp_free(struct aws_http_resp *r);

/* Connections opened so far (keep-alive makes this 1 for many calls to a healthy endpoint). */
long aws_http_connections(const struct aws_http *h);

#endif
