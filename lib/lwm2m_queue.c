#include "lwm2m_queue.h"

#include "lwm2m_registry.h"
#include "lwm2m_server.h"

#include <stdlib.h>

int lwm2m_queue_push(struct lwm2m_reg *g, struct lwm2m_request *rq, unsigned max)
{
	if (!g->q) {
		g->q = calloc(1, sizeof *g->q);
		if (!g->q)
			return -1;
	}
	if (g->q->len >= max)
		return -1;
	rq->held_next = NULL;
	if (g->q->tail)
		g->q->tail->held_next = rq;
	else
		g->q->head = rq;
	g->q->tail = rq;
	g->q->len++;
	return 0;
}

struct lwm2m_request *lwm2m_queue_pop(struct lwm2m_reg *g)
{
	if (!g->q)
		return NULL;
	struct lwm2m_request *rq = g->q->head;
	if (rq) {
		g->q->head = rq->held_next;
		if (!g->q->head)
			g->q->tail = NULL;
		g->q->len--;
		rq->held_next = NULL;
	}
	if (!g->q->head) {
		free(g->q);
		g->q = NULL;
	}
	return rq;
}

void lwm2m_queue_expire(struct lwm2m_reg *g, double cutoff, void (*cb)(struct lwm2m_request *, void *), void *ud)
{
	/* held in order, so the expired ones are a prefix */
	while (g->q && g->q->head && g->q->head->since < cutoff)
		cb(lwm2m_queue_pop(g), ud);
}

void lwm2m_queue_move(struct lwm2m_reg *from, struct lwm2m_reg *to)
{
	if (!from->q)
		return;
	if (!to->q) {
		to->q = from->q;
	} else {
		to->q->tail->held_next = from->q->head;
		to->q->tail = from->q->tail;
		to->q->len += from->q->len;
		free(from->q);
	}
	from->q = NULL;
}

unsigned lwm2m_queue_len(const struct lwm2m_reg *g)
{
	return g->q ? g->q->len : 0;
}

int lwm2m_queue_asleep(const struct lwm2m_reg *g, double now)
{
	return g->queue && (g->awake_until == 0 || now >= g->awake_until);
}

int lwm2m_queue_touch(struct lwm2m_reg *g, double now, double awake_time)
{
	if (!g->queue)
		return 0;
	int was = g->awake_until == 0;
	g->awake_until = now + awake_time;
	return was;
}

int lwm2m_queue_check_sleep(struct lwm2m_reg *g, double now)
{
	if (!g->queue || g->awake_until == 0 || now < g->awake_until)
		return 0;
	g->awake_until = 0;
	return 1;
}
