/* lwm2m-write's engine: desired-state deltas in, LwM2M Writes through lwm2m-listen's control
 * socket, shadow updates out (what the device accepted under reported, failures under
 * reported."lwm2m:errors"). Writes for devices that are offline wait for their registration. */
#ifndef WRITER_H
#define WRITER_H

#include "lwm2m_ctlclient.h"

#include <jv.h>
#include <stdio.h>

#define WRITER_ERRORS_KEY "lwm2m:errors"

struct writer_opts {
	double timeout;         /* per write, 0: lwm2m-listen's own */
	size_t max_things;      /* things with pending writes */
	size_t max_paths;       /* pending paths per thing */
};

struct writer;

struct writer *writer_new(struct ctlclient *ctl, const struct writer_opts *opts, FILE *out);
void writer_free(struct writer *w);

/* A delta line (consumed). Returns 0, or -1 when the line is not a delta (logged by the caller
 * with *why, a static string). */
int writer_delta(struct writer *w, jv delta, const char **why);
/* A line from the control socket (answers and subscribed events), consumed. */
void writer_control_line(struct writer *w, jv msg);
void writer_connected(struct writer *w);
void writer_disconnected(struct writer *w);
/* Writes sent and not answered yet. */
/* 1 once the registration list has come on the current connection (every write that can go
 * now has been sent). */
int writer_listed(const struct writer *w);
size_t writer_in_flight(const struct writer *w);
/* Paths still waiting (for a registration, or after a failure). */
size_t writer_pending(const struct writer *w);

#endif
