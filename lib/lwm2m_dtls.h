/* lwm2m-listen's DTLS set-up on libcoap (gnutls): PSK from the credentials, X.509 and raw public
 * keys through libcoap's PKI set-up, who the peer of a session is, and log lines when the limits
 * on handshakes and idle sessions are hit. */
#ifndef LWM2M_DTLS_H
#define LWM2M_DTLS_H

#include <coap3/coap.h>
#include <stddef.h>
#include <stdint.h>

struct lwm2m_security;

struct lwm2m_dtls_opts {
	const char *cert;     /* our certificate (PEM, chain); NULL: present our raw public key */
	const char *key;      /* our private key (PEM); NULL: PSK only */
	const char *ca;       /* trust anchors for devices' certificates (PEM); NULL: none */
	unsigned max_handshakes;
	unsigned max_idle_sessions;
};

/* Sets up ctx for PSK (and PKI when o->key); *secp is read at each handshake (SIGHUP swaps it).
 * NULL with a sentence in err. */
struct lwm2m_dtls *lwm2m_dtls_new(coap_context_t *ctx, struct lwm2m_security *const *secp,
                                  const struct lwm2m_dtls_opts *o, char *err, size_t errlen);
/* Reread the certificate, key and trust anchor files (SIGHUP); -1 with err: the old ones stay. */
int lwm2m_dtls_reload(struct lwm2m_dtls *d, char *err, size_t errlen);
void lwm2m_dtls_free(struct lwm2m_dtls *d);
/* Every libcoap session event (for the limit log lines). */
void lwm2m_dtls_event(struct lwm2m_dtls *d, coap_session_t *cs, coap_event_t ev);

struct lwm2m_dtls_peer {
	int sec;          /* enum lwm2m_sec */
	char id[256];     /* PSK identity, certificate CN, or "sha256:<hex>" of a raw public key */
	char cn[256];     /* X.509: the subject's CN ("" if none) */
	uint8_t hash[32]; /* X.509: SHA-256 of the certificate; RPK: of the SubjectPublicKeyInfo */
};

/* Who authenticated on DTLS session cs. -1 with *why when it cannot be told. */
int lwm2m_dtls_peer(coap_session_t *cs, struct lwm2m_dtls_peer *p, const char **why);

#endif
