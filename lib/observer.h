/* lwm2m-observe's engine: follows registrations and keeps the configured observations of each
 * device, printing every value received as a shadow update. */
#ifndef OBSERVER_H
#define OBSERVER_H

#include "lwm2m_ctlclient.h"
#include "observe_config.h"

#include <jv.h>
#include <stdio.h>

struct observer;

/* cfg and ctl stay owned by the caller and must outlive the observer. shadow: a named shadow
 * for the updates (NULL: the classic shadow). Updates go to out without a flush: the caller
 * flushes it before it waits. */
struct observer *observer_new(struct ctlclient *ctl, const struct observe_config *cfg, const char *shadow,
                              FILE *out);
void observer_free(struct observer *o);
/* on: observe all the paths of an LwM2M 1.1+ device with one Observe-Composite, so that its
 * values arrive together; per-path Observe when the device refuses it or is 1.0. */
void observer_set_composite(struct observer *o, int on);

/* A registration event line (register, update, deregister, expire, ...), consumed. */
void observer_event(struct observer *o, jv ev);
/* A line from the control socket (answers, notifications, subscribed events), consumed. */
void observer_control_line(struct observer *o, jv msg);
/* The control connection was (re)established: observations made on an earlier connection are
 * gone, so forget them and ask lwm2m-listen for its registrations (answer: observer_control_line). */
void observer_connected(struct observer *o, int subscribe);
/* The control connection was lost. */
void observer_disconnected(struct observer *o);
/* Print the values of this round: one update line per thing (several notifications of a thing
 * merged, the latest value of each resource kept). Call before waiting for more input. */
void observer_flush(struct observer *o);
/* Values received (notifications and first answers) so far. */
unsigned long observer_values(const struct observer *o);
/* Numbers for the exit status and the log: shadow updates printed. */
unsigned long observer_updates(const struct observer *o);

#endif
