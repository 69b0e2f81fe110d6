/* The token table: requests by their token (the answers and ACKs that come back). */
#include "lwm2m_server_int.h"
#include "log.h"

#include <stdlib.h>

/* ---- the token table ---- */

static size_t tok_slot(const struct lwm2m_server *s, uint64_t t)
{
	return (size_t)((t * 0x9E3779B97F4A7C15ULL) >> 24) & (s->ntok - 1);
}

void srv_tok_add(struct lwm2m_server *s, struct lwm2m_request *rq)
{
	if (s->tokcount >= s->ntok) {
		size_t n = s->ntok ? s->ntok * 2 : 256;
		struct lwm2m_request **t = calloc(n, sizeof *t);
		if (t) {
			struct lwm2m_request **old = s->tok;
			size_t on = s->ntok;
			s->tok = t;
			s->ntok = n;
			for (size_t i = 0; i < on; i++) {
				struct lwm2m_request *r, *next;
				for (r = old[i]; r; r = next) {
					next = r->next_tok;
					size_t h = tok_slot(s, r->token);
					r->next_tok = s->tok[h];
					s->tok[h] = r;
				}
			}
			free(old);
		} else if (!s->ntok) {
			die(EXIT_TEMPORARY, "unable to allocate the token table");
		}
	}
	size_t h = tok_slot(s, rq->token);
	rq->next_tok = s->tok[h];
	s->tok[h] = rq;
	s->tokcount++;
}

struct lwm2m_request *srv_tok_find(struct lwm2m_server *s, uint64_t t)
{
	if (!s->ntok)
		return NULL;
	for (struct lwm2m_request *r = s->tok[tok_slot(s, t)]; r; r = r->next_tok)
		if (r->token == t)
			return r;
	return NULL;
}

void srv_tok_del(struct lwm2m_server *s, struct lwm2m_request *rq)
{
	if (!rq->token || !s->ntok)
		return;
	for (struct lwm2m_request **pp = &s->tok[tok_slot(s, rq->token)]; *pp; pp = &(*pp)->next_tok)
		if (*pp == rq) {
			*pp = rq->next_tok;
			s->tokcount--;
			break;
		}
	rq->next_tok = NULL;
}
