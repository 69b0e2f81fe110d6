/* DTLS for lwm2m-listen on libcoap 4.3.1 with GnuTLS (see lwm2m_dtls.h). libcoap verifies a
 * device's certificate chain against the trust anchors (and logs why it refused one); the
 * callbacks here decide which identities are known: a PSK identity, a raw public key listed in
 * the credentials, a certificate that names an endpoint. */
#include "lwm2m_dtls.h"
#include "fsutil.h"
#include "hex.h"
#include "log.h"
#include "lwm2m_registry.h"
#include "lwm2m_security.h"

#include <ctype.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SS_BUCKETS 1024
#define PKI_FILE_MAX (1 << 20)

/* A server session libcoap told us about (SERVER_SESSION_NEW until SERVER_SESSION_DEL). Those
 * that may still be in a handshake are also on a list: libcoap 4.3.1 does not always raise an
 * event when a server handshake completes, so the list is checked against the sessions' state
 * when its length says the limit is reached. */
struct ss {
	coap_session_t *cs;
	struct ss *next;
	struct ss *hs_prev, *hs_next;
	struct timespec born;
	int in_handshake;
};

struct lwm2m_dtls {
	coap_context_t *ctx;
	struct lwm2m_security *const *secp;
	struct lwm2m_dtls_opts o;
	char *cert, *key, *ca; /* the files' contents, handed to libcoap (PEM_BUF) */
	size_t cert_len, key_len, ca_len;
	struct ss *ss[SS_BUCKETS];
	struct ss *hs; /* sessions that may be in a DTLS handshake */
	size_t nss, nhs;
	int hs_full;
	time_t dropped_logged;
	unsigned long dropped;
};

static const char *peer_str(coap_session_t *cs)
{
	return coap_session_str(cs);
}

/* PSK: the identity names the key; an unknown one fails the handshake. */
static const coap_bin_const_t *psk_for(coap_bin_const_t *id, coap_session_t *cs, void *arg)
{
	struct lwm2m_dtls *d = arg;
	const struct lwm2m_cred *c = lwm2m_security_by_identity(*d->secp, id->s, id->length);
	if (!c || c->sec != LWM2M_SEC_PSK) {
		log_warn("DTLS handshake from %s refused: unknown PSK identity \"%.*s\"", peer_str(cs),
		         (int)(id->length > 200 ? 200 : id->length), (const char *)id->s);
		return NULL;
	}
	log_debug("DTLS handshake from %s with PSK identity %s (endpoint %s)", peer_str(cs), c->identity, c->ep);
	return &c->bin;
}

/* Called by libcoap once the certificate chain passed its checks (X.509), or for a raw public
 * key. The identity must be one we can bind to an endpoint. */
static int cn_check(const char *cn, const uint8_t *der, size_t len, coap_session_t *cs, unsigned depth,
                    int validated, void *arg)
{
	struct lwm2m_dtls *d = arg;
	struct lwm2m_dtls_peer p;
	const char *why = NULL;
	(void)cn;
	(void)der;
	(void)len;
	if (depth > 0)
		return 1;
	if (lwm2m_dtls_peer(cs, &p, &why) < 0) {
		log_warn("DTLS handshake from %s refused: %s", peer_str(cs), why);
		return 0;
	}
	if (p.sec == LWM2M_SEC_RPK) {
		const struct lwm2m_cred *c = lwm2m_security_by_hash(*d->secp, LWM2M_SEC_RPK, p.hash);
		if (!c) {
			log_warn("DTLS handshake from %s refused: unknown raw public key %s", peer_str(cs), p.id);
			return 0;
		}
		log_debug("DTLS handshake from %s with raw public key %s (endpoint %s)", peer_str(cs), p.id, c->ep);
		return 1;
	}
	if (!validated) {
		log_warn("DTLS handshake from %s refused: certificate CN \"%s\" not trusted", peer_str(cs), p.cn);
		return 0;
	}
	const char *ep = lwm2m_security_x509_ep(*d->secp, p.cn, p.hash, &why);
	if (!ep) {
		log_warn("DTLS handshake from %s refused: certificate CN \"%s\": %s", peer_str(cs), p.cn, why);
		return 0;
	}
	log_debug("DTLS handshake from %s with certificate CN %s (endpoint %s)", peer_str(cs), p.cn, ep);
	return 1;
}

int lwm2m_dtls_peer(coap_session_t *cs, struct lwm2m_dtls_peer *p, const char **why)
{
	memset(p, 0, sizeof *p);
	coap_tls_library_t lib = COAP_TLS_LIBRARY_NOTLS;
	gnutls_session_t gs = coap_session_get_tls(cs, &lib);
	if (!gs || lib != COAP_TLS_LIBRARY_GNUTLS) {
		*why = "no GnuTLS session";
		return -1;
	}
	gnutls_credentials_type_t t = gnutls_auth_get_type(gs);
	if (t == GNUTLS_CRD_PSK) {
		const coap_bin_const_t *id = coap_session_get_psk_identity(cs);
		if (!id || id->length == 0) {
			*why = "no PSK identity on the DTLS session";
			return -1;
		}
		p->sec = LWM2M_SEC_PSK;
		snprintf(p->id, sizeof p->id, "%.*s", (int)id->length, (const char *)id->s);
		return 0;
	}
	unsigned n = 0;
	const gnutls_datum_t *l = t == GNUTLS_CRD_CERTIFICATE ? gnutls_certificate_get_peers(gs, &n) : NULL;
	if (!l || n == 0) {
		*why = "no PSK, certificate or public key from the device";
		return -1;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, l[0].data, l[0].size, p->hash) < 0) {
		*why = "unable to hash the device's key";
		return -1;
	}
	gnutls_certificate_type_t ct = gnutls_certificate_type_get2(gs, GNUTLS_CTYPE_PEERS);
	if (ct == GNUTLS_CRT_RAW) {
		p->sec = LWM2M_SEC_RPK;
		memcpy(p->id, "sha256:", 7);
		hex_encode(p->hash, sizeof p->hash, p->id + 7);
		for (char *c = p->id + 7; *c; c++)
			*c = (char)tolower((unsigned char)*c); /* as certtool prints a key ID */
		return 0;
	}
	gnutls_x509_crt_t crt;
	if (ct != GNUTLS_CRT_X509 || gnutls_x509_crt_init(&crt) < 0) {
		*why = "unknown certificate type";
		return -1;
	}
	size_t size = sizeof p->cn;
	int rc = gnutls_x509_crt_import(crt, &l[0], GNUTLS_X509_FMT_DER);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, p->cn, &size);
	gnutls_x509_crt_deinit(crt);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		p->cn[0] = 0;
	} else if (rc < 0) {
		*why = "unable to read the certificate's subject";
		return -1;
	}
	p->sec = LWM2M_SEC_X509;
	snprintf(p->id, sizeof p->id, "%s", p->cn);
	return 0;
}

static int read_pem(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	if (fs_read_file(path, buf, len, PKI_FILE_MAX) < 0) {
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	(*len)++; /* with its NUL: libcoap then uses the buffer as it is */
	return 0;
}

/* Read the files, check them with GnuTLS, hand them to libcoap; the old buffers go. */
static int pki_load(struct lwm2m_dtls *d, char *err, size_t errlen)
{
	char *cert = NULL, *key = NULL, *ca = NULL;
	size_t cert_len = 0, key_len = 0, ca_len = 0;
	gnutls_certificate_credentials_t cred = NULL;
	int rc = -1, r;
	if ((d->o.cert && read_pem(d->o.cert, &cert, &cert_len, err, errlen) < 0) ||
	    read_pem(d->o.key, &key, &key_len, err, errlen) < 0 ||
	    (d->o.ca && read_pem(d->o.ca, &ca, &ca_len, err, errlen) < 0))
		goto out;
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	gnutls_datum_t dk = {(unsigned char *)key, (unsigned)key_len - 1};
	if (cert) {
		gnutls_datum_t dc = {(unsigned char *)cert, (unsigned)cert_len - 1};
		if ((r = gnutls_certificate_set_x509_key_mem(cred, &dc, &dk, GNUTLS_X509_FMT_PEM)) < 0) {
			snprintf(err, errlen, "unable to use certificate %s with key %s: %s", d->o.cert, d->o.key,
			         gnutls_strerror(r));
			goto out;
		}
	} else if (!strstr(key, "-----BEGIN EC PRIVATE KEY-----")) {
		/* libcoap 4.3.1 derives our raw public key from an EC private key only */
		snprintf(err, errlen, "%s: want an EC PRIVATE KEY (PEM) for a raw public key", d->o.key);
		goto out;
	} else {
		gnutls_privkey_t pk;
		if ((r = gnutls_privkey_init(&pk)) >= 0) {
			r = gnutls_privkey_import_x509_raw(pk, &dk, GNUTLS_X509_FMT_PEM, NULL, 0);
			gnutls_privkey_deinit(pk);
		}
		if (r < 0) {
			snprintf(err, errlen, "unable to use key %s: %s", d->o.key, gnutls_strerror(r));
			goto out;
		}
	}
	if (ca) {
		gnutls_datum_t da = {(unsigned char *)ca, (unsigned)ca_len - 1};
		if ((r = gnutls_certificate_set_x509_trust_mem(cred, &da, GNUTLS_X509_FMT_PEM)) <= 0) {
			snprintf(err, errlen, "%s: %s", d->o.ca, r < 0 ? gnutls_strerror(r) : "no certificates");
			goto out;
		}
	}
	coap_dtls_pki_t pki = {
	    .version = COAP_DTLS_PKI_SETUP_VERSION,
	    .verify_peer_cert = 1,
	    .cert_chain_validation = 1,
	    .cert_chain_verify_depth = 3,
	    .allow_no_crl = 1,
	    .is_rpk_not_cert = cert == NULL,
	    .validate_cn_call_back = cn_check,
	    .cn_call_back_arg = d,
	};
	pki.pki_key.key_type = COAP_PKI_KEY_PEM_BUF;
	pki.pki_key.key.pem_buf.ca_cert = (const uint8_t *)ca;
	pki.pki_key.key.pem_buf.ca_cert_len = ca_len;
	pki.pki_key.key.pem_buf.public_cert = (const uint8_t *)(cert ? cert : key);
	pki.pki_key.key.pem_buf.public_cert_len = cert ? cert_len : key_len;
	pki.pki_key.key.pem_buf.private_key = (const uint8_t *)key;
	pki.pki_key.key.pem_buf.private_key_len = key_len;
	if (!coap_context_set_pki(d->ctx, &pki)) {
		snprintf(err, errlen, "libcoap refused the certificate set-up");
		goto out;
	}
	free(d->cert);
	free(d->key);
	free(d->ca);
	d->cert = cert, d->key = key, d->ca = ca;
	d->cert_len = cert_len, d->key_len = key_len, d->ca_len = ca_len;
	cert = key = ca = NULL;
	rc = 0;
out:
	if (cred)
		gnutls_certificate_free_credentials(cred);
	free(cert);
	free(key);
	free(ca);
	return rc;
}

struct lwm2m_dtls *lwm2m_dtls_new(coap_context_t *ctx, struct lwm2m_security *const *secp,
                                  const struct lwm2m_dtls_opts *o, char *err, size_t errlen)
{
	if (!coap_dtls_is_supported()) {
		snprintf(err, errlen, "this libcoap has no DTLS");
		return NULL;
	}
	if (coap_get_tls_library_version()->type != COAP_TLS_LIBRARY_GNUTLS) {
		snprintf(err, errlen, "this libcoap is not built with GnuTLS");
		return NULL;
	}
	struct lwm2m_dtls *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->ctx = ctx;
	d->secp = secp;
	d->o = *o;
	coap_dtls_spsk_t psk = {.version = COAP_DTLS_SPSK_SETUP_VERSION, .validate_id_call_back = psk_for,
	                        .id_call_back_arg = d};
	if (!coap_context_set_psk2(ctx, &psk)) {
		snprintf(err, errlen, "unable to set up DTLS PSK");
		free(d);
		return NULL;
	}
	if (o->key) {
		/* raw public keys need GnuTLS 3.6.6 (libcoap 4.3.1 has no coap_dtls_rpk_is_supported) */
		if (!o->cert && !gnutls_check_version("3.6.6")) {
			snprintf(err, errlen, "raw public keys need GnuTLS 3.6.6 or later");
			free(d);
			return NULL;
		}
		if (pki_load(d, err, errlen) < 0) {
			free(d);
			return NULL;
		}
	}
	if (o->max_handshakes)
		coap_context_set_max_handshake_sessions(ctx, o->max_handshakes);
	if (o->max_idle_sessions)
		coap_context_set_max_idle_sessions(ctx, o->max_idle_sessions);
	return d;
}

int lwm2m_dtls_reload(struct lwm2m_dtls *d, char *err, size_t errlen)
{
	return d->o.key ? pki_load(d, err, errlen) : 0;
}

void lwm2m_dtls_free(struct lwm2m_dtls *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < SS_BUCKETS; i++)
		while (d->ss[i]) {
			struct ss *h = d->ss[i];
			d->ss[i] = h->next;
			free(h);
		}
	free(d->cert);
	free(d->key);
	free(d->ca);
	free(d);
}

static struct ss **ss_slot(struct lwm2m_dtls *d, coap_session_t *cs)
{
	uintptr_t k = (uintptr_t)cs;
	struct ss **pp = &d->ss[(k >> 4 ^ k >> 14) % SS_BUCKETS];
	while (*pp && (*pp)->cs != cs)
		pp = &(*pp)->next;
	return pp;
}

static int in_handshake(coap_session_t *cs)
{
	return coap_session_get_type(cs) == COAP_SESSION_TYPE_HELLO ||
	       coap_session_get_state(cs) == COAP_SESSION_STATE_HANDSHAKE;
}

static void handshake_over(struct lwm2m_dtls *d, struct ss *h)
{
	if (!h || !h->in_handshake)
		return;
	h->in_handshake = 0;
	if (h->hs_prev)
		h->hs_prev->hs_next = h->hs_next;
	else
		d->hs = h->hs_next;
	if (h->hs_next)
		h->hs_next->hs_prev = h->hs_prev;
	h->hs_prev = h->hs_next = NULL;
	d->nhs--;
}

/* Drop the sessions whose handshake is over from the list (O(list), only near the limit). */
static void handshakes_recount(struct lwm2m_dtls *d)
{
	for (struct ss *h = d->hs, *next; h; h = next) {
		next = h->hs_next;
		if (!in_handshake(h->cs))
			handshake_over(d, h);
	}
	if (d->hs_full && d->nhs <= d->o.max_handshakes) {
		d->hs_full = 0;
		log_info("DTLS handshakes in progress below the limit again (%zu)", d->nhs);
	}
}

static double age(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void lwm2m_dtls_event(struct lwm2m_dtls *d, coap_session_t *cs, coap_event_t ev)
{
	if (!d)
		return;
	struct ss **pp = ss_slot(d, cs), *h = *pp;
	switch (ev) {
	case COAP_EVENT_SERVER_SESSION_NEW:
		if (h || !(h = calloc(1, sizeof *h)))
			break;
		h->cs = cs;
		clock_gettime(CLOCK_MONOTONIC, &h->born);
		*pp = h;
		d->nss++;
		if (coap_session_get_proto(cs) != COAP_PROTO_DTLS)
			break;
		h->in_handshake = 1;
		h->hs_next = d->hs;
		if (d->hs)
			d->hs->hs_prev = h;
		d->hs = h;
		d->nhs++;
		if (d->o.max_handshakes && d->nhs > d->o.max_handshakes)
			handshakes_recount(d);
		/* libcoap ignores ClientHellos from new peers while more than N are in progress */
		if (!d->hs_full && d->o.max_handshakes && d->nhs > d->o.max_handshakes) {
			d->hs_full = 1;
			log_warn("DTLS handshake limit reached (-H %u): %zu in progress; new peers are ignored until "
			         "some finish or time out",
			         d->o.max_handshakes, d->nhs);
		}
		break;
	case COAP_EVENT_DTLS_CONNECTED:
	case COAP_EVENT_DTLS_CLOSED:
	case COAP_EVENT_DTLS_ERROR:
		handshake_over(d, h);
		if (d->hs_full)
			handshakes_recount(d);
		break;
	case COAP_EVENT_SERVER_SESSION_DEL: {
		if (!h)
			break;
		int was_hs = in_handshake(cs);
		handshake_over(d, h);
		if (d->hs_full)
			handshakes_recount(d);
		*pp = h->next;
		d->nss--;
		/* libcoap deletes a session past its handshake when it was closed, when it was idle for
		 * the session timeout, or to make room under -I: only the last can be younger */
		unsigned timeout = coap_context_get_session_timeout(d->ctx);
		if (!was_hs && d->o.max_idle_sessions && coap_session_get_state(cs) != COAP_SESSION_STATE_NONE &&
		    age(&h->born) < (timeout ? timeout : 300)) {
			d->dropped++;
			time_t now = time(NULL);
			if (now != d->dropped_logged) {
				log_warn("session limit reached (-I %u): dropped the least recently used session of "
				         "an unregistered peer (%s; %lu so far)",
				         d->o.max_idle_sessions, peer_str(cs), d->dropped);
				d->dropped_logged = now;
			}
		}
		free(h);
		break;
	}
	default:
		break;
	}
}
