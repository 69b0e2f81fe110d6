/* DTLS credentials of lwm2m-listen: the credentials file (per endpoint a PSK identity and key, a
 * raw public key, or an X.509 certificate mapping) and the binding of an authenticated identity
 * to the one endpoint it may register as. */
#ifndef LWM2M_SECURITY_H
#define LWM2M_SECURITY_H

#include <coap3/coap.h>
#include <stddef.h>
#include <stdint.h>

#define LWM2M_PSK_MAX 64

struct lwm2m_cred {
	char *ep;
	int sec;        /* enum lwm2m_sec: PSK, RPK or X509 */
	char *identity; /* PSK identity; X.509: the certificate CN mapped to ep (NULL: by fingerprint) */
	uint8_t key[LWM2M_PSK_MAX];
	coap_bin_const_t bin; /* the PSK as libcoap's PSK callback hands it back */
	int has_hash;
	uint8_t hash[32]; /* RPK: SHA-256 of the SubjectPublicKeyInfo; X.509: of the certificate */
};

struct lwm2m_security {
	struct lwm2m_cred *v;
	size_t n;
};

/* Read JSON lines ({"ep":..,"psk_identity":..,"psk_key":"hex"}, {"ep":..,"rpk":"hex SPKI"},
 * {"ep":..,"rpk_x":..,"rpk_y":..}, {"ep":..,"x509_cn":..}, {"ep":..,"x509_sha256":..}) or YAML (a
 * sequence of such mappings). NULL with a sentence naming the file and line in err. */
struct lwm2m_security *lwm2m_security_load(const char *path, char *err, size_t errlen);
void lwm2m_security_free(struct lwm2m_security *s);
const struct lwm2m_cred *lwm2m_security_by_identity(const struct lwm2m_security *s, const uint8_t *id, size_t len);
const struct lwm2m_cred *lwm2m_security_by_ep(const struct lwm2m_security *s, const char *ep);
/* The entry of type sec (RPK, X509) with this SHA-256. */
const struct lwm2m_cred *lwm2m_security_by_hash(const struct lwm2m_security *s, int sec, const uint8_t hash[32]);
/* Does s carry raw public keys? */
int lwm2m_security_has_rpk(const struct lwm2m_security *s);

/* A device's certificate: the endpoint it is bound to (a mapping by fingerprint, then by CN,
 * else the CN itself). NULL with *why when it may not be any endpoint. */
const char *lwm2m_security_x509_ep(const struct lwm2m_security *s, const char *cn, const uint8_t fp[32],
                                   const char **why);

/* May the device on session cs act as endpoint ep? Returns 0 and sets *sec (enum lwm2m_sec) and
 * the identity (PSK identity, certificate CN, or "sha256:" and the key's hash for RPK) in idbuf
 * when it may; -1 with *why otherwise (answer 4.03). s may be NULL (no credentials: only NoSec
 * endpoints and certificates); cs NULL or not DTLS means NoSec. */
int lwm2m_security_check(const struct lwm2m_security *s, coap_session_t *cs, const char *ep, int *sec,
                         char *idbuf, size_t idlen, const char **why);

#endif
