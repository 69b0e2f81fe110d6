/* AWS Signature Version 4 (AWS4-HMAC-SHA256) on gnutls' hash and HMAC, as botocore signs for
 * every service but S3: the path is normalized and percent-encoded once more (so a thing name
 * "urn:imei:1" sent as /things/urn%3Aimei%3A1 is signed as /things/urn%253Aimei%253A1), query
 * parameters are encoded and sorted, header values trimmed, the payload hashed whole. */
#ifndef AWS_SIGV4_H
#define AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "aws_creds.h"

struct aws_header {
	const char *name;
	const char *value;
};
struct aws_param { /* a query parameter, not encoded */
	const char *key;
	const char *value;
};

struct aws_sigv4_req {
	const char *method;
	const char *host;   /* the Host header as sent: host, or host:port for a non-default port */
	const char *path;   /* the path as it goes on the request line (already percent-encoded) */
	const struct aws_param *params;
	size_t nparams;
	const struct aws_header *headers; /* more headers to sign and send (Content-Type, X-Amz-Target) */
	size_t nheaders;
	const void *body;
	size_t body_len;
};

struct aws_sigv4_result {
	char amz_date[17];     /* X-Amz-Date: 20150830T123600Z */
	char payload_hash[65]; /* hex SHA-256 of the body */
	char *authorization;   /* the Authorization header's value */
	char *query;           /* canonical query string; put it after '?' on the URL as it is */
	char *canonical_request;
	char *string_to_sign;
	char *signature;       /* hex */
};

/* Sign r for service (e.g. "iotdata", "iot", "kms") at time when with c's region and keys
 * (c->session_token, when set, is signed as X-Amz-Security-Token: send it too). Returns 0, or -1
 * with errno (ENOMEM, or EINVAL for a request without method, host or path). */
int aws_sigv4_sign(const struct aws_sigv4_req *r, const struct aws_creds *c, const char *service,
		   time_t when, struct aws_sigv4_result *out);
void aws_sigv4_result_free(struct aws_sigv4_result *out);

/* The canonical query string of params (encoded, sorted by key then value), which is also
 * what to send after '?'. malloc'd ("" for none), NULL on ENOMEM. */
char *aws_sigv4_query(const struct aws_param *params, size_t n);

/* Percent-encode s for one URI path segment or query component: every byte but A-Z a-z 0-9
 * - _ . ~ becomes %XX (upper-case hex). Also '/' unless keep_slash. malloc'd, NULL on ENOMEM. */
char *aws_uri_encode(const char *s, size_t len, int keep_slash);

#endif
