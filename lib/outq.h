/* Bytes queued for a descriptor that must never block its writer (lwm2m-listen's control socket,
 * ljs-join's crypto co-process): each may be blocked writing to us and needs us to keep reading.
 * What the descriptor does not take now stays queued; flush again when poll says POLLOUT. */
#ifndef OUTQ_H
#define OUTQ_H

#include <stddef.h>

struct outq {
	char *buf;
	size_t len, cap;
	int sock; /* a socket: send(2) with MSG_NOSIGNAL | MSG_DONTWAIT; else write(2), O_NONBLOCK */
};

/* Queue n bytes: 0, or -1 when out of memory. */
int outq_put(struct outq *q, const void *p, size_t n);
/* Write what fd takes now: 0 (all of it, or the rest stays queued), -1 with errno when fd failed
 * (what was not written stays queued). */
int outq_flush(struct outq *q, int fd);
void outq_free(struct outq *q);

#endif
