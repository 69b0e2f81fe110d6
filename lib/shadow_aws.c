#define _GNU_SOURCE /* asprintf */
#include "shadow_aws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_http.h"
#include "jsonl.h"
#include "log.h"
#include "shadow_doc.h"
#include "shadow_mqtt.h"

struct aws_backend {
	struct shadow_backend base;
	struct shadow_aws_opts o;
	struct aws_http *data, *control;
	jv created; /* things CreateThing succeeded for: {"name":true} */
	int auth_failed;
	struct shadow_mqtt *mqtt;
};

int shadow_aws_auth_failed(const struct shadow_backend *b)
{
	return ((const struct aws_backend *)b)->auth_failed;
}

/* Error types by which AWS says the credentials, not the request, are wrong. */
static int auth_error(long status, const char *type)
{
	static const char *const types[] = {"UnrecognizedClientException", "InvalidSignatureException",
					    "InvalidClientTokenId", "ExpiredTokenException",
					    "IncompleteSignatureException", "MissingAuthenticationTokenException",
					    "SignatureDoesNotMatch"};
	if (status == 401)
		return 1;
	if (status != 403)
		return 0;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(type, types[i]) == 0)
			return 1;
	return 0;
}

/* Reject r with what AWS answered: the body's code and message when it has them, else the
 * HTTP status and the error type. */
static void reject_from(struct shadow_req *r, const struct aws_http_resp *resp, const char *what)
{
	jv body = resp->len ? jv_parse_sized(resp->body, (int)resp->len) : jv_invalid();
	int code = (int)resp->status;
	const char *msg = NULL;
	if (jv_get_kind(body) == JV_KIND_OBJECT) {
		double c = jl_num(body, "code", 0);
		if (c >= 400 && c < 600)
			code = (int)c;
		msg = jl_str(body, "message");
		if (!msg)
			msg = jl_str(body, "Message");
	}
	char buf[512];
	if (!msg)
		msg = resp->error_type[0] ? resp->error_type : "Unexpected answer";
	if (what) {
		snprintf(buf, sizeof buf, "%s: %s", what, msg);
		msg = buf;
	}
	shadow_req_reject(r, code, msg, time(NULL));
	if (resp->error_type[0])
		r->result = jv_object_set(r->result, jv_string("error_type"), jv_string(resp->error_type));
	jv_free(body);
}

static char *thing_path(const char *thing, const char *suffix)
{
	char *enc = aws_uri_encode(thing, strlen(thing), 0), *p = NULL;
	if (enc && asprintf(&p, "/things/%s%s", enc, suffix) < 0)
		p = NULL;
	free(enc);
	return p;
}

static const struct aws_header json_ct[] = {{"Content-Type", "application/json"}};

/* 0 when the thing exists (made now or before), -1 with r rejected. */
static int create_thing(struct aws_backend *b, struct shadow_req *r, const char *thing)
{
	jv known = jl_get(b->created, thing);
	int exists = jv_get_kind(known) == JV_KIND_TRUE;
	jv_free(known);
	if (exists)
		return 0;
	char *path = thing_path(thing, "");
	if (!path) {
		shadow_req_reject(r, 500, "Internal service failure", time(NULL));
		return -1;
	}
	struct aws_http_resp resp;
	int rc = aws_http_call(b->control, "POST", path, NULL, 0, json_ct, 1, "{}", 2, &resp);
	free(path);
	int ok = rc == 0 && ((resp.status >= 200 && resp.status < 300) ||
			     strcmp(resp.error_type, "ResourceAlreadyExistsException") == 0);
	if (ok) {
		log_info("thing %s: created (or it existed)", thing);
		b->created = jv_object_set(b->created, jv_string(thing), jv_true());
	} else if (rc == 0) {
		if (auth_error(resp.status, resp.error_type))
			b->auth_failed = 1;
		reject_from(r, &resp, "CreateThing");
	} else {
		log_error("CreateThing %s: %s", thing, resp.error);
		shadow_req_reject(r, 503, "Service unavailable", time(NULL));
	}
	aws_http_resp_free(&resp);
	return ok ? 0 : -1;
}

/* The UpdateThingShadow payload: the update line less the pipeline's own fields. */
static jv payload_of(jv req)
{
	jv p = jv_copy(req);
	p = jv_object_delete(p, jv_string("thing"));
	p = jv_object_delete(p, jv_string("shadow"));
	return p;
}

/* 0 when r got its result; -1 on a failure that ends the batch (no answer at all). */
static int put_one(struct aws_backend *b, struct shadow_req *r)
{
	const char *thing = shadow_req_thing(r), *shadow = shadow_req_shadow(r);
	if (b->o.create_thing && create_thing(b, r, thing) < 0)
		return b->auth_failed ? -1 : 0;
	char *path = thing_path(thing, "/shadow");
	jv body = jv_dump_string(payload_of(r->req), 0);
	struct aws_param name = {"name", shadow};
	struct aws_http_resp resp;
	int rc = path ? aws_http_call(b->data, "POST", path, &name, shadow ? 1 : 0, json_ct, 1, jv_string_value(body),
				      (size_t)jv_string_length_bytes(jv_copy(body)), &resp)
		      : -1;
	free(path);
	jv_free(body);
	if (!path) {
		shadow_req_reject(r, 500, "Internal service failure", time(NULL));
		return -1;
	}
	if (rc < 0) {
		log_error("thing %s: no answer from AWS IoT: %s", thing, resp.error);
		aws_http_resp_free(&resp);
		return -1;
	}
	if (resp.status >= 200 && resp.status < 300) {
		jv doc = jv_parse_sized(resp.body, (int)resp.len);
		if (jv_get_kind(doc) != JV_KIND_OBJECT) {
			log_warn("thing %s: UpdateThingShadow answered %ld with a body that is not a JSON object",
				 thing, resp.status);
			jv_free(doc);
			doc = jv_object();
		}
		shadow_req_accept(r, doc);
	} else {
		if (auth_error(resp.status, resp.error_type))
			b->auth_failed = 1;
		reject_from(r, &resp, NULL);
		log_warn("line %lu: thing %s: rejected by AWS IoT: HTTP %ld %s", r->line, thing, resp.status,
			 resp.error_type);
	}
	aws_http_resp_free(&resp);
	return b->auth_failed ? -1 : 0;
}

static int aws_put(struct shadow_backend *base, struct shadow_req *reqs, size_t n)
{
	struct aws_backend *b = (struct aws_backend *)base;
	size_t i = 0;
	for (; i < n; i++) {
		if (jv_is_valid(reqs[i].result))
			continue;
		if (put_one(b, &reqs[i]) < 0)
			break;
	}
	if (i == n)
		return 0;
	/* no answer (AWS away past the retries, or stopping), or the credentials refused: what
	 * was not applied is reported as such, never as done */
	for (; i < n; i++)
		if (!jv_is_valid(reqs[i].result))
			shadow_req_reject(&reqs[i], 500, "Internal service failure", time(NULL));
	errno = b->auth_failed ? EACCES : EIO;
	return -1;
}

static int aws_watch_start(struct shadow_backend *base, const struct shadow_select *sel, int initial,
			   shadow_delta_fn emit, void *arg)
{
	struct aws_backend *b = (struct aws_backend *)base;
	(void)initial; /* the current delta of every thing is fetched on subscribe anyway */
	(void)emit;
	(void)arg;
	if (!b->mqtt) {
		errno = EINVAL;
		return -1;
	}
	if (sel && sel->n > 0 && !shadow_select_literal(sel)) {
		log_error("AWS IoT: watch things by name (patterns need a list of things): %s", sel->patterns[0]);
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; sel && i < sel->n; i++)
		if (shadow_mqtt_watch(b->mqtt, sel->patterns[i], 1) < 0)
			return -1;
	return shadow_mqtt_start(b->mqtt);
}

static int aws_watch_fd(struct shadow_backend *base)
{
	struct aws_backend *b = (struct aws_backend *)base;
	return b->mqtt ? shadow_mqtt_fd(b->mqtt) : -1;
}

static int aws_watch_drain(struct shadow_backend *base, shadow_delta_fn emit, void *arg)
{
	struct aws_backend *b = (struct aws_backend *)base;
	return b->mqtt ? shadow_mqtt_drain(b->mqtt, emit, arg) : 0;
}

int shadow_aws_event(struct shadow_backend *base, const char *line, size_t len, unsigned long lineno)
{
	struct aws_backend *b = (struct aws_backend *)base;
	jv ev = jsonl_parse_object(line, len);
	if (!jv_is_valid(ev)) {
		jv msg = jv_invalid_get_msg(ev);
		log_warn("event line %lu: %s", lineno, jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
		return -1;
	}
	const char *kind = jl_str(ev, "event"), *ep = jl_str(ev, "ep");
	int rc = 0;
	if (kind && ep && b->mqtt) {
		if (!shadow_thing_name_ok(ep)) {
			log_warn("event line %lu: endpoint %s is not a valid thing name", lineno, ep);
			rc = -1;
		} else if (strcmp(kind, "register") == 0 || strcmp(kind, "update") == 0) {
			rc = shadow_mqtt_watch(b->mqtt, ep, 1);
		} else if (strcmp(kind, "deregister") == 0 || strcmp(kind, "expire") == 0) {
			rc = shadow_mqtt_watch(b->mqtt, ep, 0);
		}
	}
	jv_free(ev);
	return rc;
}

static void aws_close(struct shadow_backend *base)
{
	struct aws_backend *b = (struct aws_backend *)base;
	aws_http_free(b->data);
	aws_http_free(b->control);
	shadow_mqtt_free(b->mqtt);
	jv_free(b->created);
	if (!b->mqtt) { /* the put side owns copies of its settings */
		aws_creds_free(&b->o.creds);
		free((char *)b->o.control_endpoint);
	}
	free(b);
}

static const struct shadow_backend_ops aws_ops = {
	.put = aws_put,
	.watch_start = aws_watch_start,
	.watch_fd = aws_watch_fd,
	.watch_drain = aws_watch_drain,
	.close = aws_close,
};

void shadow_aws_opts_init(struct shadow_aws_opts *o)
{
	memset(o, 0, sizeof *o);
	aws_creds_from_env(&o->creds, "AWS_IOT_ENDPOINT");
	o->retries = -1;
	o->backoff_max = 20;
	o->mqtt_port = 8883;
	o->reconnect_max = 30;
}

void shadow_aws_opts_free(struct shadow_aws_opts *o)
{
	aws_creds_free(&o->creds);
}

void shadow_aws_usage(FILE *f, int width, int watch)
{
	static const char *const lines[][2] = {
		{"-a, --aws", "use AWS IoT instead of the local store"},
		{"-e, --endpoint HOST", "AWS IoT endpoint (default $AWS_IOT_ENDPOINT)"},
		{"-R, --region REGION", "AWS region (default $AWS_REGION)"},
		{"-c, --cert FILE", "AWS: X.509 client certificate (PEM)"},
		{"-k, --key FILE", "AWS: its private key (PEM)"},
		{"-A, --cacert FILE", "AWS: CA certificates to trust (default: the system's)"},
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		fprintf(f, "  %-*s %s\n", width - 3, lines[i][0], lines[i][1]);
	fprintf(f, "  %-*s %s\n", width - 3, "-B, --backoff-max SEC",
		watch ? "AWS: longest wait between reconnections (default 30)"
		      : "AWS: longest wait between retries (default 20)");
}

int shadow_aws_option(struct shadow_aws_opts *o, int c, const char *arg)
{
	char *end;
	switch (c) {
	case 'a':
		o->enabled = 1;
		return 0;
	case 'e':
		aws_creds_set(&o->creds.endpoint, arg);
		return 0;
	case 'R':
		aws_creds_set(&o->creds.region, arg);
		return 0;
	case 'c':
		o->cert = arg;
		return 0;
	case 'k':
		o->key = arg;
		return 0;
	case 'A':
		o->cacert = arg;
		return 0;
	case 'B': {
		double d = strtod(arg, &end);
		if (*end || !(d >= 0.1 && d <= 3600))
			die(EXIT_USAGE, "bad --backoff-max: %s (0.1 to 3600 seconds)", arg);
		o->backoff_max = d;
		o->reconnect_max = d < 1 ? 1 : (int)d;
		return 0;
	}
	default:
		return -1;
	}
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static struct shadow_backend *open_watch(const struct shadow_aws_opts *o, char *err, size_t errlen)
{
	struct shadow_mqtt_opts mo = {
		.endpoint = o->creds.endpoint, .port = o->mqtt_port, .cacert = o->cacert, .cert = o->cert,
		.key = o->key, .client_id = o->client_id, .shadows = o->shadows, .nshadows = o->nshadows,
		.no_classic = o->no_classic, .reconnect_max = o->reconnect_max,
	};
	struct shadow_mqtt *m = shadow_mqtt_new(&mo, err, errlen);
	if (!m)
		return NULL;
	struct aws_backend *b = calloc(1, sizeof *b);
	if (!b) {
		shadow_mqtt_free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->base.ops = &aws_ops;
	b->created = jv_object();
	b->mqtt = m;
	return &b->base;
}

struct shadow_backend *shadow_aws_open(const struct shadow_aws_opts *o, char *err, size_t errlen)
{
	if (o->watch)
		return open_watch(o, err, errlen);
	int x509 = o->cert || o->key;
	if (x509 && !(o->cert && o->key)) {
		snprintf(err, errlen, "give both a client certificate and its key");
		return NULL;
	}
	if (!o->creds.endpoint) {
		snprintf(err, errlen, "no AWS IoT endpoint: set AWS_IOT_ENDPOINT or give --endpoint "
				      "(aws iot describe-endpoint --endpoint-type iot:Data-ATS)");
		return NULL;
	}
	const char *missing = x509 ? NULL : aws_creds_missing(&o->creds);
	if (missing) {
		snprintf(err, errlen, "%s (or give a client certificate and key)", missing);
		return NULL;
	}
	if (o->create_thing && (missing = aws_creds_missing(&o->creds))) {
		snprintf(err, errlen, "--create-thing signs with AWS credentials: %s", missing);
		return NULL;
	}
	struct aws_backend *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->base.ops = &aws_ops;
	b->o = *o;
	b->created = jv_object();
	/* the backend owns copies of the strings it keeps */
	b->o.creds.region = dup_or_null(o->creds.region);
	b->o.creds.endpoint = dup_or_null(o->creds.endpoint);
	b->o.creds.access_key = dup_or_null(o->creds.access_key);
	b->o.creds.secret_key = dup_or_null(o->creds.secret_key);
	b->o.creds.session_token = dup_or_null(o->creds.session_token);
	b->o.control_endpoint = NULL;
	if (o->create_thing) {
		if (o->control_endpoint)
			b->o.control_endpoint = strdup(o->control_endpoint);
		else if (asprintf((char **)&b->o.control_endpoint, "https://iot.%s.amazonaws.com", o->creds.region) < 0)
			b->o.control_endpoint = NULL;
	}
	struct aws_http_opts ho = {
		.endpoint = b->o.creds.endpoint, .creds = x509 ? NULL : &b->o.creds, .service = "iotdata",
		.cert = o->cert, .key = o->key, .cacert = o->cacert, .retries = o->retries,
		.backoff_max = o->backoff_max, .timeout = o->timeout, .stop = o->stop,
	};
	char herr[256];
	if (!(b->data = aws_http_new(&ho, herr, sizeof herr))) {
		snprintf(err, errlen, "AWS IoT data endpoint: %s", herr);
		aws_close(&b->base);
		return NULL;
	}
	if (o->create_thing) {
		ho.endpoint = b->o.control_endpoint;
		ho.creds = &b->o.creds;
		ho.service = "iot";
		ho.cert = ho.key = NULL;
		if (!(b->control = aws_http_new(&ho, herr, sizeof herr))) {
			snprintf(err, errlen, "AWS IoT control endpoint: %s", herr);
			aws_close(&b->base);
			return NULL;
		}
	}
	return &b->base;
}
