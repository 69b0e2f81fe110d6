/* The AWS IoT Device Shadow backend: updates through the data plane's HTTPS API
 * (UpdateThingShadow, SigV4 service "iotdata", or an X.509 client certificate), optionally
 * creating the Thing first (IoT CreateThing, SigV4 service "iot"); deltas over MQTT/TLS (see
 * lib/shadow_mqtt.h). */
#ifndef SHADOW_AWS_H
#define SHADOW_AWS_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "aws_creds.h"
#include "shadow_backend.h"

struct shadow_aws_opts {
	int enabled;                  /* --aws given */
	struct aws_creds creds;       /* region, keys, and endpoint = the data endpoint */
	const char *control_endpoint; /* CreateThing; default https://iot.<region>.amazonaws.com */
	const char *cert, *key;       /* X.509 client certificate and key (PEM files) */
	const char *cacert;           /* CA bundle to trust instead of the system's */
	int create_thing;
	int retries;        /* HTTP retries per update, -1 for no limit */
	double backoff_max; /* seconds */
	long timeout;       /* seconds per HTTP attempt */
	/* shadow-watch over MQTT */
	int watch;              /* open for watching (MQTT) rather than for updates (HTTPS) */
	int mqtt_port;          /* 8883 */
	int reconnect_max;      /* seconds */
	const char *client_id;  /* default shadow-watch-<pid> */
	char **shadows;         /* named shadows to watch besides the classic one */
	int nshadows;
	int no_classic;         /* watch the named shadows only */
	volatile sig_atomic_t *stop;
};

/* Command-line options of the AWS backend, shared by shadow-put and shadow-watch: the short
 * letters, the long forms and the help lines. shadow_aws_option handles one (0), or returns
 * -1 for a letter that is not its own, or dies with a usage error for a bad value.
 * shadow_aws_opts_init fills the defaults and the environment (AWS_IOT_ENDPOINT, AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
#define SHADOW_AWS_SHORTOPTS "ae:R:c:k:A:B:"
#define SHADOW_AWS_LONGOPTS                                                                     \
	{"aws", no_argument, 0, 'a'}, {"endpoint", required_argument, 0, 'e'},                  \
	    {"region", required_argument, 0, 'R'}, {"cert", required_argument, 0, 'c'},         \
	    {"key", required_argument, 0, 'k'}, {"cacert", required_argument, 0, 'A'},          \
	    {"backoff-max", required_argument, 0, 'B'}
/* The help lines of those options, descriptions starting at column width; watch: for
 * shadow-watch (MQTT) rather than shadow-put (HTTPS). */
void shadow_aws_usage(FILE *f, int width, int watch);
void shadow_aws_opts_init(struct shadow_aws_opts *o);
int shadow_aws_option(struct shadow_aws_opts *o, int c, const char *arg);
void shadow_aws_opts_free(struct shadow_aws_opts *o);

/* Check the settings and open the backend; NULL with a message for a usage error. Nothing is
 * contacted yet. */
struct shadow_backend *shadow_aws_open(const struct shadow_aws_opts *o, char *err, size_t errlen);

/* Set by put when AWS refused the credentials themselves (a permanent configuration error:
 * every further update would be refused the same way). */
int shadow_aws_auth_failed(const struct shadow_backend *b);

/* Watching things named by lwm2m-listen's events: a register (or update) line subscribes to
 * its endpoint's shadows, deregister and expire unsubscribe. Other lines are ignored; a line
 * that is not JSON is reported with its number. 0, or -1 for a malformed line. */
int shadow_aws_event(struct shadow_backend *b, const char *line, size_t len, unsigned long lineno);

#endif
