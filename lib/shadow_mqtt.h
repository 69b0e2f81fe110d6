/* Shadow deltas from AWS IoT over MQTT/TLS (libmosquitto, X.509 client certificate): per
 * watched thing, subscribed to $aws/things/<thing>/shadow/update/delta (and
 * .../shadow/name/<name>/update/delta for named shadows) and to the /get answers; on every
 * (re)subscription the current document is fetched (/get) so a delta missed while away is not
 * lost; deltas not newer than one already printed are dropped. libmosquitto's own thread runs
 * the connection and reconnects with exponential backoff; the caller polls one descriptor and
 * drains what arrived in its own thread. */
#ifndef SHADOW_MQTT_H
#define SHADOW_MQTT_H

#include "shadow_backend.h"

struct shadow_mqtt_opts {
	const char *endpoint;     /* host, host:port or mqtts://host[:port] */
	int port;                 /* when the endpoint names none: 8883 */
	const char *cacert;       /* CA file; NULL: the system's trust store */
	const char *cert, *key;   /* the client certificate and key (PEM files) */
	const char *client_id;    /* NULL: shadow-watch-<pid> */
	char **shadows;           /* named shadows watched per thing */
	int nshadows;
	int no_classic;           /* only the named ones */
	int reconnect_max;        /* seconds, the backoff's cap */
};

struct shadow_mqtt;

struct shadow_mqtt *shadow_mqtt_new(const struct shadow_mqtt_opts *o, char *err, size_t errlen);
/* Start or stop watching a thing's shadows (on: 1 / 0); safe before and after start. 0, or -1. */
int shadow_mqtt_watch(struct shadow_mqtt *m, const char *thing, int on);
/* Connect in the background (retrying until it succeeds). 0, or -1 with errno. */
int shadow_mqtt_start(struct shadow_mqtt *m);
/* Readable when there is something to drain. */
int shadow_mqtt_fd(struct shadow_mqtt *m);
/* Emit every delta line that arrived (the /update/delta body plus "thing" and "shadow"). */
int shadow_mqtt_drain(struct shadow_mqtt *m, shadow_delta_fn emit, void *arg);
void shadow_mqtt_free(struct shadow_mqtt *m);

#endif
