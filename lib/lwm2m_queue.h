/* Queue mode (LwM2M 1.0 binding UQ, 1.1 parameter Q): when a device counts as asleep, and the
 * bounded first-in first-out list of requests held for it until it next talks. */
#ifndef LWM2M_QUEUE_H
#define LWM2M_QUEUE_H

#include <stddef.h>

struct lwm2m_request;
struct lwm2m_reg;

struct lwm2m_queue {
	struct lwm2m_request *head, *tail;
	unsigned len;
};

/* Hold rq at the tail. 0, or -1 when max requests are held already. */
int lwm2m_queue_push(struct lwm2m_reg *g, struct lwm2m_request *rq, unsigned max);
/* The oldest held request, unlinked; NULL when none. Frees the queue when it empties. */
struct lwm2m_request *lwm2m_queue_pop(struct lwm2m_reg *g);
/* Unlink every request held since before cutoff (oldest first) and pass each to cb. */
void lwm2m_queue_expire(struct lwm2m_reg *g, double cutoff, void (*cb)(struct lwm2m_request *, void *), void *ud);
/* Move every held request from one registration to the end of another's (re-Register). */
void lwm2m_queue_move(struct lwm2m_reg *from, struct lwm2m_reg *to);
unsigned lwm2m_queue_len(const struct lwm2m_reg *g);

/* Queue-mode state. A device is awake until awake_until; every message from it extends that. */
int lwm2m_queue_asleep(const struct lwm2m_reg *g, double now);
/* The device talked: 1 if it was asleep (a "wake" event is due). */
int lwm2m_queue_touch(struct lwm2m_reg *g, double now, double awake_time);
/* 1 if its awake time ran out at now and it just fell asleep (a "sleep" event is due). */
int lwm2m_queue_check_sleep(struct lwm2m_reg *g, double now);

#endif
