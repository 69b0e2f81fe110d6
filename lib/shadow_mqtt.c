#define _GNU_SOURCE /* asprintf, pipe2 */
#include "shadow_mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonl.h"
#include "log.h"
#include "shadow_doc.h"

#define QUEUE_MAX 4096 /* messages waiting for the main thread; beyond, fetch again (see on_message) */
#define MSG_MAX (64u << 10)

enum msg_kind { MSG_DELTA, MSG_GET_ACCEPTED, MSG_GET_REJECTED };

struct msg {
	struct msg *next;
	enum msg_kind kind;
	char *thing, *shadow; /* shadow NULL: classic */
	char *payload;
	size_t len;
};

struct shadow_mqtt {
	struct mosquitto *mosq;
	struct shadow_mqtt_opts o;
	char *host;
	int port;
	int pipe[2];
	pthread_mutex_t lock; /* guards everything below, shared with libmosquitto's thread */
	char **things;
	size_t nthings, cap;
	int connected, started;
	struct pending_sub {
		int mid;
		char *topic;
	} subs[64]; /* SUBSCRIBEs waiting for their SUBACK, to log the outcome */
	struct msg *head, *tail;
	size_t queued;
	unsigned long dropped;
	char **refetch; /* topic prefixes whose messages were dropped: /get them again */
	size_t nrefetch, refetch_cap;
	/* main thread only */
	jv seen; /* versions already printed, see shadow_seen_newer */
};

static int lib_users; /* mosquitto_lib_init once, cleanup after the last client */

/* The topic prefix of one shadow: $aws/things/T/shadow or $aws/things/T/shadow/name/N. */
static char *prefix(const char *thing, const char *shadow)
{
	char *p = NULL;
	int n = shadow ? asprintf(&p, "$aws/things/%s/shadow/name/%s", thing, shadow)
		       : asprintf(&p, "$aws/things/%s/shadow", thing);
	return n < 0 ? NULL : p;
}

/* Subscribe (or unsubscribe) one thing's topics, and ask for its current documents. Called
 * with the lock held, from either thread. */
static void thing_topics(struct shadow_mqtt *m, const char *thing, int on)
{
	int n = m->o.nshadows + (m->o.no_classic ? 0 : 1);
	for (int i = 0; i < n; i++) {
		const char *shadow = i < m->o.nshadows ? m->o.shadows[i] : NULL;
		char *pre = prefix(thing, shadow), *t[3] = {NULL, NULL, NULL}, *get = NULL;
		if (!pre || asprintf(&t[0], "%s/update/delta", pre) < 0 || asprintf(&t[1], "%s/get/accepted", pre) < 0 ||
		    asprintf(&t[2], "%s/get/rejected", pre) < 0 || asprintf(&get, "%s/get", pre) < 0) {
			log_error("out of memory for the topics of %s", thing);
		} else if (on) {
			int mid = 0;
			int rc = mosquitto_subscribe_multiple(m->mosq, &mid, 3, t, 1, 0, NULL);
			if (rc == MOSQ_ERR_SUCCESS) {
				for (size_t k = 0; k < sizeof m->subs / sizeof m->subs[0]; k++)
					if (!m->subs[k].topic) {
						m->subs[k].mid = mid;
						m->subs[k].topic = pre;
						pre = NULL;
						break;
					}
				rc = mosquitto_publish(m->mosq, NULL, get, 0, "", 1, false);
			}
			if (rc != MOSQ_ERR_SUCCESS)
				log_warn("unable to subscribe to %s: %s", t[0], mosquitto_strerror(rc));
		} else {
			int rc = mosquitto_unsubscribe_multiple(m->mosq, NULL, 3, t, NULL);
			if (rc != MOSQ_ERR_SUCCESS)
				log_warn("unable to unsubscribe from %s: %s", pre, mosquitto_strerror(rc));
			else
				log_debug("unsubscribed from %s", pre);
		}
		free(pre);
		free(get);
		for (int k = 0; k < 3; k++)
			free(t[k]);
	}
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	(void)mosq;
	struct shadow_mqtt *m = arg;
	if (rc != 0) {
		log_error("AWS IoT MQTT %s:%d refused the connection: %s", m->host, m->port, mosquitto_connack_string(rc));
		return;
	}
	pthread_mutex_lock(&m->lock);
	m->connected = 1;
	for (size_t k = 0; k < sizeof m->subs / sizeof m->subs[0]; k++) { /* lost with the last session */
		free(m->subs[k].topic);
		m->subs[k].topic = NULL;
	}
	log_info("connected to %s:%d; subscribing to %zu thing(s)", m->host, m->port, m->nthings);
	/* a clean session each time: subscriptions are made again, and /get catches up on what
	 * changed while we were away */
	for (size_t i = 0; i < m->nthings; i++)
		thing_topics(m, m->things[i], 1);
	pthread_mutex_unlock(&m->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *arg, int mid, int n, const int *granted)
{
	(void)mosq;
	struct shadow_mqtt *m = arg;
	pthread_mutex_lock(&m->lock);
	for (size_t k = 0; k < sizeof m->subs / sizeof m->subs[0]; k++) {
		if (!m->subs[k].topic || m->subs[k].mid != mid)
			continue;
		int refused = 0;
		for (int i = 0; i < n; i++)
			refused |= granted[i] == 0x80;
		if (refused) /* AWS IoT does this when the policy does not allow the topic */
			log_error("the broker refused the subscription to %s/...", m->subs[k].topic);
		else
			log_info("subscribed to %s", m->subs[k].topic);
		free(m->subs[k].topic);
		m->subs[k].topic = NULL;
	}
	pthread_mutex_unlock(&m->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
	(void)mosq;
	struct shadow_mqtt *m = arg;
	pthread_mutex_lock(&m->lock);
	m->connected = 0;
	pthread_mutex_unlock(&m->lock);
	if (rc != 0)
		log_warn("lost the connection to %s:%d (%s); reconnecting", m->host, m->port, mosquitto_strerror(rc));
}

static void on_log(struct mosquitto *mosq, void *arg, int level, const char *str)
{
	(void)mosq;
	(void)arg;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		log_debug("libmosquitto: %s", str);
}

static void msg_free(struct msg *q)
{
	if (!q)
		return;
	free(q->thing);
	free(q->shadow);
	free(q->payload);
	free(q);
}

static int watched(const struct shadow_mqtt *m, const char *thing)
{
	for (size_t i = 0; i < m->nthings; i++)
		if (strcmp(m->things[i], thing) == 0)
			return 1;
	return 0;
}

/* $aws/things/<thing>/shadow[/name/<name>]/<rest>: the parts, or -1. */
static int parse_topic(const char *topic, char **thing, char **shadow, const char **rest)
{
	static const char pre[] = "$aws/things/";
	if (strncmp(topic, pre, sizeof pre - 1) != 0)
		return -1;
	const char *t = topic + sizeof pre - 1, *slash = strchr(t, '/');
	if (!slash || strncmp(slash, "/shadow/", 8) != 0)
		return -1;
	*thing = strndup(t, (size_t)(slash - t));
	*shadow = NULL;
	const char *r = slash + 8;
	if (strncmp(r, "name/", 5) == 0) {
		const char *n = r + 5, *e = strchr(n, '/');
		if (!e) {
			free(*thing);
			return -1;
		}
		*shadow = strndup(n, (size_t)(e - n));
		r = e + 1;
	}
	*rest = r;
	return *thing ? 0 : -1;
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg)
{
	(void)mosq;
	struct shadow_mqtt *m = arg;
	char *thing = NULL, *shadow = NULL;
	const char *rest;
	if (parse_topic(msg->topic, &thing, &shadow, &rest) < 0) {
		log_debug("ignoring a message on %s", msg->topic);
		return;
	}
	enum msg_kind kind;
	if (strcmp(rest, "update/delta") == 0)
		kind = MSG_DELTA;
	else if (strcmp(rest, "get/accepted") == 0)
		kind = MSG_GET_ACCEPTED;
	else if (strcmp(rest, "get/rejected") == 0)
		kind = MSG_GET_REJECTED;
	else {
		free(thing);
		free(shadow);
		return;
	}
	if (msg->payloadlen < 0 || (size_t)msg->payloadlen > MSG_MAX) {
		log_warn("%s: a message of %d bytes, dropped", msg->topic, msg->payloadlen);
		free(thing);
		free(shadow);
		return;
	}
	struct msg *q = calloc(1, sizeof *q);
	if (q)
		q->payload = malloc((size_t)msg->payloadlen + 1);
	if (!q || !q->payload) {
		log_error("out of memory for a message on %s", msg->topic);
		free(q);
		free(thing);
		free(shadow);
		return;
	}
	q->kind = kind;
	q->thing = thing;
	q->shadow = shadow;
	memcpy(q->payload, msg->payload, (size_t)msg->payloadlen);
	q->payload[msg->payloadlen] = 0;
	q->len = (size_t)msg->payloadlen;
	pthread_mutex_lock(&m->lock);
	if (m->queued >= QUEUE_MAX) {
		/* the main thread is stuck (stdout blocked): rather than hold more, drop this
		 * message and fetch the shadow again once the queue has drained, which brings
		 * whatever it said (and anything newer) back */
		char *pre = prefix(q->thing, q->shadow);
		int known = 0;
		for (size_t i = 0; pre && i < m->nrefetch; i++)
			known |= strcmp(m->refetch[i], pre) == 0;
		if (pre && !known && m->nrefetch == m->refetch_cap) {
			size_t cap = m->refetch_cap ? 2 * m->refetch_cap : 16;
			char **r = realloc(m->refetch, cap * sizeof *r);
			if (r) {
				m->refetch = r;
				m->refetch_cap = cap;
			}
		}
		if (pre && !known && m->nrefetch < m->refetch_cap)
			m->refetch[m->nrefetch++] = pre;
		else
			free(pre);
		m->dropped++;
		pthread_mutex_unlock(&m->lock);
		msg_free(q);
		return;
	}
	if (m->tail)
		m->tail->next = q;
	else
		m->head = q;
	m->tail = q;
	m->queued++;
	pthread_mutex_unlock(&m->lock);
	ssize_t w = write(m->pipe[1], "", 1); /* a full pipe already says "drain me" */
	(void)w;
}

struct shadow_mqtt *shadow_mqtt_new(const struct shadow_mqtt_opts *o, char *err, size_t errlen)
{
	if (!o->cert || !o->key) {
		snprintf(err, errlen, "MQTT to AWS IoT needs a client certificate and key (--cert, --key)");
		return NULL;
	}
	if (!o->endpoint) {
		snprintf(err, errlen, "no AWS IoT endpoint: set AWS_IOT_ENDPOINT or give --endpoint");
		return NULL;
	}
	for (int i = 0; i < o->nshadows; i++)
		if (!shadow_shadow_name_ok(o->shadows[i])) {
			snprintf(err, errlen, "bad shadow name: %s", o->shadows[i]);
			return NULL;
		}
	if (o->no_classic && o->nshadows == 0) {
		snprintf(err, errlen, "nothing to watch: no classic shadow and no named one");
		return NULL;
	}
	struct shadow_mqtt *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->o = *o;
	m->pipe[0] = m->pipe[1] = -1;
	m->seen = jv_object();
	pthread_mutex_init(&m->lock, NULL);
	const char *ep = o->endpoint;
	if (strncmp(ep, "mqtts://", 8) == 0)
		ep += 8;
	else if (strstr(ep, "://")) {
		snprintf(err, errlen, "endpoint %s: give host[:port] or mqtts://host[:port]", o->endpoint);
		goto fail;
	}
	m->host = strndup(ep, strcspn(ep, ":/"));
	m->port = o->port > 0 ? o->port : 8883;
	const char *colon = strchr(ep, ':');
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (p < 1 || p > 65535 || (*end && *end != '/')) {
			snprintf(err, errlen, "endpoint %s: bad port", o->endpoint);
			goto fail;
		}
		m->port = (int)p;
	}
	if (!m->host || !*m->host) {
		snprintf(err, errlen, "endpoint %s: no host", o->endpoint);
		goto fail;
	}
	if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "unable to create a pipe: %s", strerror(errno));
		goto fail;
	}
	if (lib_users++ == 0)
		mosquitto_lib_init();
	char idbuf[64];
	if (!o->client_id)
		snprintf(idbuf, sizeof idbuf, "shadow-watch-%ld", (long)getpid());
	m->mosq = mosquitto_new(o->client_id ? o->client_id : idbuf, true, m);
	if (!m->mosq) {
		snprintf(err, errlen, "unable to create an MQTT client: %s", strerror(errno));
		goto fail;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	int rc = mosquitto_tls_set(m->mosq, o->cacert, o->cacert ? NULL : "/etc/ssl/certs", o->cert, o->key, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(m->mosq, 1, "tlsv1.2", NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "TLS settings (CA %s, certificate %s, key %s): %s", o->cacert ? o->cacert : "system",
			 o->cert, o->key, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		goto fail;
	}
	mosquitto_reconnect_delay_set(m->mosq, 1, o->reconnect_max > 0 ? (unsigned)o->reconnect_max : 30, true);
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_subscribe_callback_set(m->mosq, on_subscribe);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_log_callback_set(m->mosq, on_log);
	return m;
fail:
	shadow_mqtt_free(m);
	return NULL;
}

int shadow_mqtt_watch(struct shadow_mqtt *m, const char *thing, int on)
{
	pthread_mutex_lock(&m->lock);
	int rc = 0;
	size_t i = 0;
	while (i < m->nthings && strcmp(m->things[i], thing) != 0)
		i++;
	if (on && i == m->nthings) {
		if (m->nthings == m->cap) {
			size_t cap = m->cap ? 2 * m->cap : 16;
			char **t = realloc(m->things, cap * sizeof *t);
			if (!t) {
				rc = -1;
				goto out;
			}
			m->things = t;
			m->cap = cap;
		}
		if (!(m->things[m->nthings] = strdup(thing))) {
			rc = -1;
			goto out;
		}
		m->nthings++;
		log_info("watching %s", thing);
		if (m->connected)
			thing_topics(m, thing, 1);
	} else if (!on && i < m->nthings) {
		log_info("no longer watching %s", thing);
		if (m->connected)
			thing_topics(m, thing, 0);
		free(m->things[i]);
		m->things[i] = m->things[--m->nthings];
	}
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int shadow_mqtt_start(struct shadow_mqtt *m)
{
	if (m->started)
		return 0;
	/* libmosquitto's thread inherits our signal mask: keep signals for the main thread */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = mosquitto_connect_async(m->mosq, m->host, m->port, 60);
	if (rc != MOSQ_ERR_SUCCESS)
		log_warn("connecting to %s:%d: %s; retrying", m->host, m->port,
			 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	int lrc = mosquitto_loop_start(m->mosq);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (lrc != MOSQ_ERR_SUCCESS) {
		errno = lrc == MOSQ_ERR_ERRNO ? errno : EINVAL;
		return -1;
	}
	m->started = 1;
	return 0;
}

int shadow_mqtt_fd(struct shadow_mqtt *m)
{
	return m->pipe[0];
}

/* One message to at most one delta line. */
static void handle(struct shadow_mqtt *m, struct msg *q, shadow_delta_fn emit, void *arg)
{
	const char *what = q->shadow ? q->shadow : "classic";
	if (q->kind == MSG_GET_REJECTED) {
		/* 404: no shadow yet, so no delta either */
		log_debug("%s (%s): get rejected: %.200s", q->thing, what, q->payload);
		return;
	}
	jv body = jsonl_parse_object(q->payload, q->len);
	if (!jv_is_valid(body)) {
		jv msg = jv_invalid_get_msg(body);
		log_warn("%s (%s): %s", q->thing, what, jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "bad message");
		jv_free(msg);
		return;
	}
	jv delta = q->kind == MSG_DELTA ? body : shadow_delta(body, time(NULL));
	if (q->kind != MSG_DELTA)
		jv_free(body);
	if (!jv_is_valid(delta)) {
		jv_free(delta);
		return; /* a document with nothing desired that differs */
	}
	jv version = jl_get(delta, "version"), state = jl_get(delta, "state");
	int state_ok = jv_get_kind(state) == JV_KIND_OBJECT;
	jv_free(state);
	if (jv_get_kind(version) != JV_KIND_NUMBER || !state_ok) {
		log_warn("%s (%s): a delta without version or state, dropped", q->thing, what);
		jv_free(version);
		jv_free(delta);
		return;
	}
	double v = jv_number_value(version);
	jv_free(version);
	if (!shadow_seen_newer(&m->seen, q->thing, q->shadow, v)) {
		log_debug("%s (%s): version %.0f is not newer than one printed, dropped", q->thing, what, v);
		jv_free(delta);
		return;
	}
	emit(arg, shadow_tag(delta, q->thing, q->shadow, NULL));
}

int shadow_mqtt_drain(struct shadow_mqtt *m, shadow_delta_fn emit, void *arg)
{
	char buf[256];
	while (read(m->pipe[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&m->lock);
	struct msg *list = m->head;
	m->head = m->tail = NULL;
	m->queued = 0;
	unsigned long dropped = m->dropped;
	m->dropped = 0;
	pthread_mutex_unlock(&m->lock);
	if (dropped)
		log_warn("%lu message(s) dropped while output was blocked; fetching those shadows again", dropped);
	while (list) {
		struct msg *next = list->next;
		pthread_mutex_lock(&m->lock);
		int w = watched(m, list->thing);
		pthread_mutex_unlock(&m->lock);
		if (w)
			handle(m, list, emit, arg);
		msg_free(list);
		list = next;
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nrefetch; i++) {
		char *get = NULL;
		if (m->connected && asprintf(&get, "%s/get", m->refetch[i]) >= 0)
			mosquitto_publish(m->mosq, NULL, get, 0, "", 1, false);
		free(get);
		free(m->refetch[i]);
	}
	m->nrefetch = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void shadow_mqtt_free(struct shadow_mqtt *m)
{
	if (!m)
		return;
	if (m->mosq) {
		if (m->started) {
			mosquitto_disconnect(m->mosq);
			mosquitto_loop_stop(m->mosq, false);
		}
		mosquitto_destroy(m->mosq);
		if (--lib_users == 0)
			mosquitto_lib_cleanup();
	}
	while (m->head) {
		struct msg *n = m->head->next;
		msg_free(m->head);
		m->head = n;
	}
	for (size_t i = 0; i < m->nthings; i++)
		free(m->things[i]);
	free(m->things);
	for (size_t k = 0; k < sizeof m->subs / sizeof m->subs[0]; k++)
		free(m->subs[k].topic);
	for (size_t i = 0; i < m->nrefetch; i++)
		free(m->refetch[i]);
	free(m->refetch);
	free(m->host);
	if (m->pipe[0] >= 0)
		close(m->pipe[0]);
	if (m->pipe[1] >= 0)
		close(m->pipe[1]);
	jv_free(m->seen);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
