/* The LwM2M server side of lwm2m-listen on libcoap: the registration interface (/rd, /rd/<id>),
 * Send (/dp), and requests to devices (tokens, retransmission timeouts, observations, block-wise
 * transfers and queue mode) on the device's own session. */
#ifndef LWM2M_SERVER_H
#define LWM2M_SERVER_H

#include "lwm2m_path.h"
#include "lwm2m_registry.h"

#include <jv.h>
#include <stdint.h>

struct lwm2m_server_opts {
	const char *listen;      /* "ADDR:PORT" */
	const char *state_dir;   /* NULL: no persistence */
	double ack_timeout;      /* CoAP ACK_TIMEOUT, seconds */
	int max_retransmit;      /* CoAP MAX_RETRANSMIT */
	double req_timeout;      /* a request with no answer at all after this: "timeout" */
	double awake_time;       /* queue mode: awake this long after the device last talked */
	unsigned queue_max;      /* requests held per sleeping device */
	double queue_ttl;        /* seconds a request may be held */
	double sync_interval;    /* at most this long between a change and its save */
	int coap_log_level;      /* libcoap log level */
	const char *dtls_listen; /* "ADDR:PORT" for coaps, NULL for none */
	struct lwm2m_security *security; /* credentials (NULL: none; every endpoint NoSec) */
	unsigned max_handshakes; /* DTLS handshakes in progress at once (0: libcoap's default) */
	unsigned max_idle_sessions; /* sessions of unregistered peers kept (0: libcoap's default) */
	const char *dtls_cert, *dtls_key, *dtls_ca; /* PEM files (lwm2m_dtls.h); NULL: PSK only */
	unsigned max_per_address; /* registrations from one IP address (0: no limit) */
};

enum lwm2m_rq_state { RQ_NEW, RQ_HELD, RQ_INFLIGHT, RQ_OBSERVING, RQ_CANCELLING, RQ_DONE };

/* A request to a device. The control side fills the "what" and "who" parts and submits it; the
 * server owns it from then on and reports through the reply callback. */
struct lwm2m_request {
	/* what */
	uint8_t method;            /* COAP_REQUEST_CODE_GET ... (1 GET, 2 POST, 3 PUT, 4 DELETE, 5 FETCH, 7 iPATCH) */
	int8_t observe;            /* -1 none, 0 observe */
	struct lwm2m_path path;
	int nqueries;
	char *queries[8];          /* Uri-Query options ("pmin=5"), malloc'd */
	int ct, accept;            /* Content-Format and Accept, -1 for none */
	uint8_t *payload;
	size_t len;
	/* who asked */
	uint64_t client;           /* control connection (0: stdin) */
	jv cmd;                    /* the command, echoed in every reply (id, op, ep, path...); an
	                              observation keeps it as its JSON text (far smaller in jq) */
	double timeout;            /* per-request timeout (0: the server's) */
	/* server state */
	enum lwm2m_rq_state state;
	uint64_t token;
	double since;              /* when held or sent */
	struct lwm2m_reg *reg;     /* NULL once the registration is gone */
	void *session;             /* the session it was sent on (referenced while in flight) */
	struct lwm2m_xmit *xmit;   /* on our UDP socket: the CON message not yet acknowledged */
	uint8_t *body;             /* on our UDP socket: Block2 body so far, or the Block1 payload */
	uint32_t body_len;         /* bytes in body */
	uint32_t block;            /* the block number being sent (Block1) or asked for (Block2) */
	uint8_t bmode;             /* 0, 1 sending the payload in Block1, 2 fetching Block2 */
	uint8_t szx;               /* the device's Block2 size exponent */
	uint8_t b1szx;             /* on our UDP socket: the Block1 size exponent we send parts in */
	uint8_t body_obs;          /* the first block of the body carried Observe */
	uint8_t ack_wait;          /* a CON notification (Message ID ack_mid) waits for its line to be
	                              written before we acknowledge it: drop its retransmissions */
	uint16_t ack_mid;
	uint8_t has_obs_seq;       /* on our UDP socket: obs_seq/obs_at hold the last notification taken */
	uint32_t obs_seq;          /* its Observe number (RFC 7641 3.4: only fresher ones are taken) */
	double obs_at;             /* and when it came */
	struct lwm2m_request *next_tok;          /* token hash chain */
	struct lwm2m_request *reg_prev, *reg_next; /* all requests of a registration */
	struct lwm2m_request *held_next;         /* the registration's queue of held requests */
	struct lwm2m_request *all_prev, *all_next; /* every live request */
	char *cancel_reason;       /* when an observation ends locally */
	jv cancel_cmd;             /* the cancel-observe command waiting for the device's answer */
};

struct lwm2m_reply {
	int code;               /* CoAP code as 205, 404...; 0 when the device did not answer */
	const char *status;     /* when code is 0: "timeout", "reset", "queue-full", "queue-expired",
	                           "cancelled", "unknown-endpoint", "send-failed" */
	const char *error;      /* a human sentence, or NULL */
	int ct;                 /* Content-Format of data, -1 none */
	const uint8_t *data;
	size_t len;
	int notify;             /* a notification of an observation */
	int final;              /* the request ends with this reply */
	char location[64];      /* Location-Path of a Create ("/3303/1"), "" if none */
};

struct lwm2m_stats {
	uint64_t registers, updates, deregisters, expires, rejected_registrations;
	uint64_t requests, responses, timeouts, notifications_in, notifications_out;
	uint64_t held, queue_expired, queue_full, errors, bad_packets, sends, dropped_lines;
	uint64_t saves, save_errors;
	uint64_t refused_per_address; /* Registers refused: their address had max_per_address */
};

struct lwm2m_server_cb {
	void (*event)(const char *line, size_t len, void *ud);           /* one JSON line with its \n */
	void (*reply)(struct lwm2m_request *rq, const struct lwm2m_reply *rep, void *ud);
	void *ud;
	/* Optional. flush: write what the events and replies of a round queued. out_pos: bytes
	 * queued and written so far for client's lines (-1: no such client). With both, a
	 * confirmable notification (or response) from a NoSec device is acknowledged once its line
	 * is written, with the other ACKs of that round. */
	void (*flush)(void *ud);
	int (*out_pos)(uint64_t client, uint64_t *queued, uint64_t *written, void *ud);
};

struct lwm2m_server;

/* Bind the endpoint and restore saved registrations. NULL with a logged reason on failure
 * (*usage set when the options themselves are wrong). */
struct lwm2m_server *lwm2m_server_new(const struct lwm2m_server_opts *o, const struct lwm2m_server_cb *cb,
                                      int *usage);
void lwm2m_server_free(struct lwm2m_server *s);
/* The descriptor to poll for CoAP work, and the work itself (COAP_IO_NO_WAIT, repeated while
 * datagrams are waiting, at most a bounded number of times). */
int lwm2m_server_fd(const struct lwm2m_server *s);
/* read_datagrams 0: leave datagrams waiting (backpressure); timers still run. */
void lwm2m_server_io(struct lwm2m_server *s, int read_datagrams);
/* Expiry, queue-mode sleep, held-request TTLs, request deadlines, saving. Call about once a
 * second; returns milliseconds until it wants to run again. */
int lwm2m_server_tick(struct lwm2m_server *s);
/* New credentials (SIGHUP): registrations and sessions stay; returns the old ones to free. */
struct lwm2m_security *lwm2m_server_set_security(struct lwm2m_server *s, struct lwm2m_security *sec);
/* Reread our certificate, key and trust anchors (SIGHUP); -1 with err: the old ones stay. */
int lwm2m_server_dtls_reload(struct lwm2m_server *s, char *err, size_t errlen);
/* Save now if anything changed (at exit). */
void lwm2m_server_sync(struct lwm2m_server *s);

/* A new request for the control side to fill (cmd taken). */
struct lwm2m_request *lwm2m_request_new(jv cmd, uint64_t client);
void lwm2m_request_free(struct lwm2m_request *rq);
/* The command as an object (a new reference), whichever way it is kept. */
jv lwm2m_request_cmd(const struct lwm2m_request *rq);
/* Send rq to the device registered as ep now, or hold it while the device sleeps. Every outcome
 * is reported through the reply callback (maybe before this returns). */
void lwm2m_server_submit(struct lwm2m_server *s, const char *ep, struct lwm2m_request *rq);
/* End the observation client made on ep/path (ids match the observe command's path, or paths for
 * a composite one). Returns 0 if one was found (the answer comes through the reply callback with
 * cmd), -1 if there is none. */
int lwm2m_server_cancel_observe(struct lwm2m_server *s, const char *ep, const char *path, uint64_t client,
                                jv cmd);
/* How many requests and observations of client are alive. */
unsigned long lwm2m_server_client_requests(const struct lwm2m_server *s, uint64_t client);
/* A control connection went away: forget its requests, cancel its observations. */
void lwm2m_server_client_gone(struct lwm2m_server *s, uint64_t client);

const struct lwm2m_registry *lwm2m_server_registry(const struct lwm2m_server *s);
struct lwm2m_reg *lwm2m_server_find(struct lwm2m_server *s, const char *ep);
/* The registration as an event record (without event/time); asleep added for queue mode. */
jv lwm2m_server_reg_json(const struct lwm2m_server *s, const struct lwm2m_reg *g);
jv lwm2m_server_stats(const struct lwm2m_server *s);
struct lwm2m_stats *lwm2m_server_counters(struct lwm2m_server *s);

double lwm2m_now(void); /* wall clock, fractional seconds */

#endif
