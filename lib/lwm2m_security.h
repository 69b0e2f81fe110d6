/* DTLS credentials of lwm2m-listen: the credentials file (PSK identity and key per endpoint) and
 * the binding of an authenticated identity to the one endpoint it may register as. */
#ifndef LWM2M_SECURITY_H
#define LWM2M_SECURITY_H

#include <coap3/coap.h>
#include <stddef.h>
#include <stdint.h>

#define LWM2M_PSK_MAX 64

struct lwm2m_cred {
	char *ep;
	char *identity;
	uint8_t key[LWM2M_PSK_MAX];
	coap_bin_const_t bin; /* the key as libcoap's PSK callback hands it back */
};

struct lwm2m_security {
	struct lwm2m_cred *v;
	size_t n;
};

/* Read JSON lines ({"ep":..,"psk_identity":..,"psk_key":"hex"}) or YAML (a sequence of such
 * mappings). NULL with a sentence naming the file and line in err. */
struct lwm2m_security *lwm2m_security_load(const char *path, char *err, size_t errlen);
void lwm2m_security_free(struct lwm2m_security *s);
const struct lwm2m_cred *lwm2m_security_by_identity(const struct lwm2m_security *s, const uint8_t *id, size_t len);
const struct lwm2m_cred *lwm2m_security_by_ep(const struct lwm2m_security *s, const char *ep);

/* May the device on session cs act as endpoint ep? Returns 0 and sets *sec (enum lwm2m_sec) and
 * *identity (borrowed from the session, NUL-terminated copy in idbuf) when it may; -1 with *why
 * otherwise (answer 4.03). s may be NULL (no credentials: only NoSec endpoints). */
int lwm2m_security_check(const struct lwm2m_security *s, coap_session_t *cs, const char *ep, int *sec,
                         char *idbuf, size_t idlen, const char **why);

#endif
