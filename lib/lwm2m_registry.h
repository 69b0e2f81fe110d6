/* The LwM2M registrations lwm2m-listen holds: compact records found by endpoint name and by
 * registration id, their expiry, and their persistence in a state directory. */
#ifndef LWM2M_REGISTRY_H
#define LWM2M_REGISTRY_H

#include <jv.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LWM2M_EP_MAX 255 /* longest endpoint name we accept */

enum lwm2m_sec { LWM2M_SEC_NOSEC = 0, LWM2M_SEC_PSK, LWM2M_SEC_RPK, LWM2M_SEC_X509 };

union lwm2m_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct lwm2m_queue;
struct lwm2m_request;

struct lwm2m_reg {
	struct lwm2m_reg *next_ep, *next_id, *next_addr; /* hash chains */
	uint32_t id;
	uint32_t lt;            /* lifetime, seconds */
	double registered;      /* wall clock of the Register */
	double updated;         /* of the last Register or Update: expiry is updated + lt */
	double awake_until;     /* queue mode: when it is considered asleep (0: asleep) */
	uint8_t version;        /* 10, 11, 12 */
	uint8_t queue;          /* queue mode (binding Q or the Q parameter) */
	uint8_t sec;            /* enum lwm2m_sec */
	uint8_t nct;
	uint8_t addr_linked;    /* in the address table (reached over lwm2m-listen's own UDP socket) */
	uint8_t has_reg_mid;    /* reg_mid is the Message ID of the Register that made it */
	uint16_t reg_mid;       /* so a retransmitted Register is answered again, not redone */
	char binding[8];
	uint16_t ct[4];         /* content formats it announced (rt="oma.lwm2m";ct=...) */
	uint32_t nobjects;
	uint32_t *objects;      /* sorted (object << 16) | instance, 0xffff for "/O" */
	char *sms;              /* MSISDN, rarely set */
	char *identity;         /* DTLS identity when secure */
	union lwm2m_addr addr;
	void *session;          /* the server's handle to reach it (NULL when restored) */
	struct lwm2m_queue *q;  /* held requests (queue mode or not yet reachable), NULL if none */
	struct lwm2m_request *reqs; /* every live request to it (held, in flight, observing) */
	uint32_t nobs;          /* observations on it */
	uint8_t src[16];        /* the IP address it is counted under (lwm2m_registry_from) */
	char ep[];
};

struct lwm2m_ipcount;

struct lwm2m_registry {
	struct lwm2m_reg **by_ep, **by_id, **by_addr;
	size_t nbuckets, count;
	struct lwm2m_ipcount **by_ip; /* registrations per source IP address */
	int jfd; /* the journal beside the saved file, open once written to; -1 before */
	size_t jlines; /* lines in it since the last save */
	/* While jdefer is set, journal lines gather in jpend and are written by
	 * lwm2m_registry_journal_flush, once per round of datagrams, before their answers go out. */
	int jdefer;
	char *jpend;
	size_t jplen, jpcap, jplines;
};

void lwm2m_registry_init(struct lwm2m_registry *r);
/* Frees every registration; on_free (may be NULL) sees each one first. */
void lwm2m_registry_free(struct lwm2m_registry *r, void (*on_free)(struct lwm2m_reg *, void *), void *ud);

struct lwm2m_reg *lwm2m_reg_by_ep(const struct lwm2m_registry *r, const char *ep);
struct lwm2m_reg *lwm2m_reg_by_id(const struct lwm2m_registry *r, uint32_t id);
/* "4a1f0c2b" -> id; 0 if it is not a registration id we could have made. */
uint32_t lwm2m_reg_id_parse(const char *s, size_t len);
void lwm2m_reg_id_str(uint32_t id, char buf[9]);

/* A new registration for ep (not yet in the registry), with a fresh unique id when id is 0. */
struct lwm2m_reg *lwm2m_reg_new(struct lwm2m_registry *r, const char *ep, uint32_t id);
/* Counted under the IP address in g->addr (lwm2m_registry_from) until unlinked. */
void lwm2m_reg_insert(struct lwm2m_registry *r, struct lwm2m_reg *g);
/* How many registrations were inserted with an address of a's IP (any port) and are still in. */
unsigned lwm2m_registry_from(const struct lwm2m_registry *r, const union lwm2m_addr *a);
/* 1 if g is counted under a's IP address. */
int lwm2m_reg_counted_under(const struct lwm2m_reg *g, const union lwm2m_addr *a);
/* The address table: registrations reached at g->addr without a libcoap session (NoSec). */
struct lwm2m_reg *lwm2m_reg_by_addr(const struct lwm2m_registry *r, const union lwm2m_addr *a);
void lwm2m_reg_addr_link(struct lwm2m_registry *r, struct lwm2m_reg *g);
void lwm2m_reg_addr_unlink(struct lwm2m_registry *r, struct lwm2m_reg *g);
/* Unlink from every table (the caller frees with lwm2m_reg_free). */
void lwm2m_reg_unlink(struct lwm2m_registry *r, struct lwm2m_reg *g);
void lwm2m_reg_free(struct lwm2m_reg *g);

/* Iterate: for (g = lwm2m_reg_first(r, &i); g; g = lwm2m_reg_next(r, g, &i)) (no unlinking of
 * the current one inside; collect first). */
struct lwm2m_reg *lwm2m_reg_first(const struct lwm2m_registry *r, size_t *bucket);
struct lwm2m_reg *lwm2m_reg_next(const struct lwm2m_registry *r, struct lwm2m_reg *g, size_t *bucket);

/* "127.0.0.1:5683" / "[::1]:5683" */
void lwm2m_addr_str(const union lwm2m_addr *a, char *buf, size_t size);
int lwm2m_addr_parse(const char *s, union lwm2m_addr *a);
int lwm2m_addr_equal(const union lwm2m_addr *a, const union lwm2m_addr *b);

const char *lwm2m_sec_name(int sec);
/* The registration as the event records show it: ep, reg, lt, lwm2m, b, queue, objects, ct,
 * addr, sec (+ identity, sms). */
jv lwm2m_reg_json(const struct lwm2m_reg *g);
struct jbuf;
/* The same members as JSON text without the braces ("ep":...,"sec":...), appended to b: byte for
 * byte what jq prints for lwm2m_reg_json(g), without building it. 0, or -1 (out of memory). */
int lwm2m_reg_json_text(struct jbuf *b, const struct lwm2m_reg *g);
/* Object paths as strings, for the event and for checks ("/3/0", "/5"). */
jv lwm2m_reg_objects_json(const struct lwm2m_reg *g);
/* 1 if the registration announced the object instance (or the object) that path starts with. */
int lwm2m_reg_has_path(const struct lwm2m_reg *g, const uint16_t *id, int len);

/* Persistence: all registrations as JSON lines in path, replaced atomically, after which the
 * journal (path + ".journal") is emptied. 0, or -1 with errno. */
int lwm2m_registry_save(struct lwm2m_registry *r, const char *path);
/* Append one change to the journal before it is acknowledged, so that a kill -9 between two saves
 * loses nothing a device was told: the registration as it now is (Register, Update), or its
 * removal (De-register). One write(2) of one line. 0, or -1 with errno. */
enum lwm2m_journal_op { LWM2M_JOURNAL_SET, LWM2M_JOURNAL_DEL };
int lwm2m_registry_journal(struct lwm2m_registry *r, const char *path, const struct lwm2m_reg *g,
                           enum lwm2m_journal_op op);
/* Write the lines gathered while jdefer was set (one write(2)). 0, or -1 with errno: then they
 * are dropped, and the changes they describe must not be acknowledged. */
int lwm2m_registry_journal_flush(struct lwm2m_registry *r);
/* Make the journal durable (flush, then fdatasync). 0, or -1 with errno. */
int lwm2m_registry_journal_sync(struct lwm2m_registry *r);
/* Load a saved file and replay its journal; registrations whose lifetime ended before now are
 * passed to expired (may be NULL) and dropped. Returns the number loaded, or -1 with errno
 * (ENOENT: nothing saved). */
long lwm2m_registry_load(struct lwm2m_registry *r, const char *path, double now,
                         void (*expired)(struct lwm2m_reg *, void *), void *ud);

#endif
