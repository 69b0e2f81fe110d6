/* The Join Server over HTTP(S): GNU libmicrohttpd with its gnutls TLS. Every Backend Interfaces
 * answer is HTTP 200; a body that is not a JSON object gets 400. In mutual-TLS mode the client
 * certificate must chain to the CA that the client-CA map assigns to the message's SenderID
 * (a NetID for NS requests, the AS-ID for AppSKeyReq); the map is YAML, one "sender: file" per
 * line, files relative to the map, as in The Things Stack's interop configuration. */
#ifndef JS_HTTP_H
#define JS_HTTP_H

#include <stddef.h>

#include "js_server.h"

enum js_tls { JS_TLS_NONE, JS_TLS_SERVER, JS_TLS_MUTUAL };

struct js_http_opts {
	const char *listen; /* ADDR:PORT, [ADDR]:PORT or :PORT */
	enum js_tls tls;
	const char *cert, *key;  /* PEM files */
	const char *client_cas;  /* YAML map, mutual mode */
	const char *jwt_issuer, *jwt_audience, *jwks; /* Packet Broker tokens */
	unsigned threads;        /* HTTP event threads; 0: one per CPU */
};

struct js_http;

/* Listen and serve in background threads. NULL with a reason in err. */
struct js_http *js_http_start(struct js_server *srv, const struct js_http_opts *o, char *err, size_t errlen);
/* Reread the certificate, key and client-CA map (SIGHUP): new connections use them; the
 * connections open now finish on the old ones. 0, or -1 (the old ones stay) with a reason. */
int js_http_reload(struct js_http *h, char *err, size_t errlen);
/* Housekeeping from the main loop: retire replaced servers once idle. */
void js_http_tick(struct js_http *h);
void js_http_stop(struct js_http *h);

/* The client-CA map: sender ID -> trusted CAs. */
struct js_ca_map;
struct js_ca_map *js_ca_map_load(const char *path, char *err, size_t errlen);
void js_ca_map_free(struct js_ca_map *m);
/* The PEM text of every CA in the map, for the TLS CertificateRequest (caller frees). */
char *js_ca_map_pem(const struct js_ca_map *m, size_t *len);

#endif
