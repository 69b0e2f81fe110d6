/* A client of lwm2m-listen's control socket (lwm2m-observe, lwm2m-write): connect, send command
 * lines with ids, read answer and event lines, and reconnect after lwm2m-listen restarts. */
#ifndef LWM2M_CTLCLIENT_H
#define LWM2M_CTLCLIENT_H

#include <jv.h>
#include <poll.h>

struct ctlclient;

/* Nothing is connected yet; call ctl_poll_setup/ctl_poll_done (or ctl_connect) to connect. */
struct ctlclient *ctl_new(const char *path);
void ctl_free(struct ctlclient *c);

int ctl_connected(const struct ctlclient *c);
/* Try to connect now: 1 newly connected, 0 already connected, -1 not possible (errno; the
 * first failure and each change of reason is logged once). */
int ctl_connect(struct ctlclient *c);
/* Send cmd (consumed) with a fresh numeric "id" (returned, > 0); 0 when not connected or the
 * write failed (the connection is then closed and will be retried). */
double ctl_send(struct ctlclient *c, jv cmd);

/* poll(2) integration. setup fills fd/events (fd -1 while disconnected) and returns the poll
 * timeout in ms the client needs (for reconnect attempts; -1 for none). */
int ctl_poll_setup(struct ctlclient *c, struct pollfd *p);
/* After poll: read what arrived. Returns 1 if the connection was (re)established during this
 * call (the caller re-sends its subscriptions), -1 if it was lost, 0 otherwise. */
int ctl_poll_done(struct ctlclient *c, const struct pollfd *p);
/* The next line received, parsed (a JSON object), or jv_invalid() when none is buffered.
 * Malformed lines are logged and skipped. */
jv ctl_next(struct ctlclient *c);
/* After ctl_poll_done and the lines it brought: read what else is waiting, without blocking.
 * 1 if there are new lines for ctl_next. */
int ctl_read_more(struct ctlclient *c);

#endif
