/* The credentials file and the identity/endpoint binding (see lwm2m_security.h). */
#include "lwm2m_security.h"
#include "hex.h"
#include "jsonl.h"
#include "lwm2m_dtls.h"
#include "lwm2m_registry.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void lwm2m_security_free(struct lwm2m_security *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].ep);
		free(s->v[i].identity);
	}
	free(s->v);
	free(s);
}

const struct lwm2m_cred *lwm2m_security_by_identity(const struct lwm2m_security *s, const uint8_t *id, size_t len)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].sec == LWM2M_SEC_PSK && strlen(s->v[i].identity) == len &&
		    memcmp(s->v[i].identity, id, len) == 0)
			return &s->v[i];
	return NULL;
}

const struct lwm2m_cred *lwm2m_security_by_ep(const struct lwm2m_security *s, const char *ep)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i].ep, ep) == 0)
			return &s->v[i];
	return NULL;
}

const struct lwm2m_cred *lwm2m_security_by_hash(const struct lwm2m_security *s, int sec, const uint8_t hash[32])
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].sec == sec && s->v[i].has_hash && memcmp(s->v[i].hash, hash, 32) == 0)
			return &s->v[i];
	return NULL;
}

static const struct lwm2m_cred *by_cn(const struct lwm2m_security *s, const char *cn)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].sec == LWM2M_SEC_X509 && s->v[i].identity && strcmp(s->v[i].identity, cn) == 0)
			return &s->v[i];
	return NULL;
}

int lwm2m_security_has_rpk(const struct lwm2m_security *s)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].sec == LWM2M_SEC_RPK)
			return 1;
	return 0;
}

const char *lwm2m_security_x509_ep(const struct lwm2m_security *s, const char *cn, const uint8_t fp[32],
                                   const char **why)
{
	const struct lwm2m_cred *c = lwm2m_security_by_hash(s, LWM2M_SEC_X509, fp);
	if (!c && *cn)
		c = by_cn(s, cn);
	if (c)
		return c->ep;
	if (!*cn || strlen(cn) > LWM2M_EP_MAX) {
		*why = "no CN to take the endpoint name from, and no mapping";
		return NULL;
	}
	c = lwm2m_security_by_ep(s, cn);
	if (c && c->sec != LWM2M_SEC_X509) {
		*why = c->sec == LWM2M_SEC_PSK ? "the endpoint of that name has a PSK" : "the endpoint of that name has a raw public key";
		return NULL;
	}
	if (c) {
		*why = "the endpoint of that name is mapped to another certificate";
		return NULL;
	}
	return cn;
}

/* A P-256 point as a SubjectPublicKeyInfo (RFC 5480), the form a device presents it in. */
static int ec_spki(const char *x, const char *y, uint8_t out[91])
{
	static const uint8_t head[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	                                 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
	                                 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
	memcpy(out, head, sizeof head);
	return hex_decode_exact(x, out + 27, 32) < 0 || hex_decode_exact(y, out + 59, 32) < 0 ? -1 : 0;
}

struct fields {
	const char *ep, *psk_identity, *psk_key, *rpk, *rpk_x, *rpk_y, *x509_cn, *x509_sha256;
};

/* One entry; a sentence in err when it is wrong. */
static int add(struct lwm2m_security *s, const struct fields *f, char *err, size_t errlen)
{
	const char *ep = f->ep;
	if (!ep || !*ep || strlen(ep) > LWM2M_EP_MAX) {
		snprintf(err, errlen, "missing or bad \"ep\"");
		return -1;
	}
	int kinds = (f->psk_identity || f->psk_key) + (f->rpk || f->rpk_x || f->rpk_y) + (f->x509_cn || f->x509_sha256);
	if (kinds != 1 || (f->psk_identity && !*f->psk_identity) || (!f->psk_identity != !f->psk_key) ||
	    (f->rpk && (f->rpk_x || f->rpk_y)) || (!f->rpk && !f->rpk_x != !f->rpk_y) || (f->x509_cn && f->x509_sha256) ||
	    (f->x509_cn && !*f->x509_cn)) {
		snprintf(err, errlen,
		         "endpoint %.100s: want one of psk_identity + psk_key, rpk, rpk_x + rpk_y, x509_cn, x509_sha256", ep);
		return -1;
	}
	if (lwm2m_security_by_ep(s, ep)) {
		snprintf(err, errlen, "endpoint %.100s listed twice", ep);
		return -1;
	}
	struct lwm2m_cred c = {0};
	const char *id = NULL;
	if (f->psk_identity) {
		c.sec = LWM2M_SEC_PSK;
		id = f->psk_identity;
		if (lwm2m_security_by_identity(s, (const uint8_t *)id, strlen(id))) {
			snprintf(err, errlen, "PSK identity %.100s listed twice", id);
			return -1;
		}
		long n = hex_decode(f->psk_key, c.key, sizeof c.key);
		if (n <= 0) {
			snprintf(err, errlen, "endpoint %.100s: psk_key is not 1 to %d bytes of hex", ep, LWM2M_PSK_MAX);
			return -1;
		}
		c.bin.length = (size_t)n;
	} else if (f->rpk || f->rpk_x) {
		c.sec = LWM2M_SEC_RPK;
		uint8_t spki[600];
		long n = 91;
		if (f->rpk_x ? ec_spki(f->rpk_x, f->rpk_y, spki) < 0 : (n = hex_decode(f->rpk, spki, sizeof spki)) < 20) {
			snprintf(err, errlen,
			         "endpoint %.100s: %s", ep, f->rpk_x ? "rpk_x and rpk_y must be 32 bytes of hex each (P-256)"
			                                           : "rpk is not a SubjectPublicKeyInfo in hex");
			return -1;
		}
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, spki, (size_t)n, c.hash) < 0) {
			snprintf(err, errlen, "unable to hash a public key");
			return -1;
		}
	} else {
		c.sec = LWM2M_SEC_X509;
		id = f->x509_cn;
		if (f->x509_sha256) {
			char hex[65];
			size_t k = 0;
			/* also as certtool prints it: sha256:ab:cd:... */
			const char *p = strncmp(f->x509_sha256, "sha256:", 7) == 0 ? f->x509_sha256 + 7 : f->x509_sha256;
			for (; *p && k < sizeof hex - 1; p++)
				if (*p != ':')
					hex[k++] = *p;
			hex[k] = 0;
			if (*p || hex_decode_exact(hex, c.hash, 32) < 0) {
				snprintf(err, errlen, "endpoint %.100s: x509_sha256 is not 32 bytes of hex", ep);
				return -1;
			}
		} else if (by_cn(s, id)) {
			snprintf(err, errlen, "certificate CN %.100s listed twice", id);
			return -1;
		}
	}
	if (c.sec != LWM2M_SEC_PSK && !(c.sec == LWM2M_SEC_X509 && f->x509_cn)) {
		c.has_hash = 1;
		if (lwm2m_security_by_hash(s, c.sec, c.hash)) {
			snprintf(err, errlen, "endpoint %.100s: that %s is listed twice", ep,
			         c.sec == LWM2M_SEC_RPK ? "public key" : "certificate");
			return -1;
		}
	}
	struct lwm2m_cred *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->v = nv;
	c.ep = strdup(ep);
	c.identity = id ? strdup(id) : NULL;
	if (!c.ep || (id && !c.identity)) {
		free(c.ep);
		free(c.identity);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->v[s->n++] = c;
	return 0;
}

static int load_jsonl(struct lwm2m_security *s, FILE *f, const char *path, char *err, size_t errlen)
{
	char *line = NULL, msg[200];
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int rc = 0;
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		size_t i = 0;
		while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r'))
			i++;
		if (i == (size_t)len || line[i] == '#')
			continue;
		jv o = jsonl_parse_object(line, (size_t)len);
		if (!jv_is_valid(o)) {
			jv m = jv_invalid_get_msg(o);
			snprintf(err, errlen, "%s:%lu: %s", path, lineno,
			         jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "not a JSON object");
			jv_free(m);
			rc = -1;
			break;
		}
		struct fields fl = {jl_str(o, "ep"), jl_str(o, "psk_identity"), jl_str(o, "psk_key"), jl_str(o, "rpk"),
		                    jl_str(o, "rpk_x"), jl_str(o, "rpk_y"), jl_str(o, "x509_cn"), jl_str(o, "x509_sha256")};
		if (add(s, &fl, msg, sizeof msg) < 0) {
			snprintf(err, errlen, "%s:%lu: %s", path, lineno, msg);
			rc = -1;
		}
		jv_free(o);
	}
	free(line);
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static const char *const field_names[] = {"ep",    "psk_identity", "psk_key", "rpk",
                                           "rpk_x", "rpk_y",        "x509_cn", "x509_sha256"};
#define NFIELDS (sizeof field_names / sizeof field_names[0])

/* A sequence of flat mappings of scalars. */
static int load_yaml(struct lwm2m_security *s, FILE *f, const char *path, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char *key = NULL, *val[NFIELDS] = {0}, msg[200];
	int depth = 0, rc = -1;
	size_t line = 0;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			snprintf(err, errlen, "%s:%zu: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "bad YAML");
			break;
		}
		yaml_event_type_t t = ev.type;
		line = ev.start_mark.line + 1;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			rc = 0;
			break;
		}
		int bad = 0;
		if (t == YAML_SEQUENCE_START_EVENT) {
			bad = depth != 0;
			depth++;
		} else if (t == YAML_MAPPING_START_EVENT) {
			bad = depth != 1;
			depth++;
		} else if (t == YAML_MAPPING_END_EVENT) {
			depth--;
			struct fields fl = {val[0], val[1], val[2], val[3], val[4], val[5], val[6], val[7]};
			int r = add(s, &fl, msg, sizeof msg);
			for (size_t i = 0; i < NFIELDS; i++) {
				free(val[i]);
				val[i] = NULL;
			}
			if (r < 0) {
				snprintf(err, errlen, "%s:%zu: %s", path, line, msg);
				yaml_event_delete(&ev);
				break;
			}
		} else if (t == YAML_SEQUENCE_END_EVENT) {
			depth--;
		} else if (t == YAML_SCALAR_EVENT) {
			const char *v = (const char *)ev.data.scalar.value;
			if (depth != 2) {
				bad = 1;
			} else if (!key) {
				key = strdup(v);
			} else {
				for (size_t i = 0; i < NFIELDS; i++)
					if (strcmp(key, field_names[i]) == 0) {
						free(val[i]);
						val[i] = strdup(v);
					}
				free(key);
				key = NULL;
			}
		} else if (t == YAML_ALIAS_EVENT) {
			bad = 1;
		}
		yaml_event_delete(&ev);
		if (bad) {
			snprintf(err, errlen, "%s:%zu: expected a list of mappings (ep, psk_identity, psk_key, ...)", path,
			         line);
			break;
		}
	}
	free(key);
	for (size_t i = 0; i < NFIELDS; i++)
		free(val[i]);
	yaml_parser_delete(&p);
	return rc;
}

struct lwm2m_security *lwm2m_security_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct lwm2m_security *s = calloc(1, sizeof *s);
	if (!s) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* JSON lines start with '{' (after blank and comment lines); anything else is YAML */
	int c, json = 0, comment = 0;
	while ((c = getc(f)) != EOF) {
		if (comment) {
			comment = c != '\n';
			continue;
		}
		if (c == '#')
			comment = 1;
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			json = c == '{';
			break;
		}
	}
	rewind(f);
	int rc = json ? load_jsonl(s, f, path, err, errlen) : load_yaml(s, f, path, err, errlen);
	fclose(f);
	if (rc < 0) {
		lwm2m_security_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		s->v[i].bin.s = s->v[i].key; /* the array moved while it grew */
	return s;
}

int lwm2m_security_check(const struct lwm2m_security *s, coap_session_t *cs, const char *ep, int *sec,
                         char *idbuf, size_t idlen, const char **why)
{
	idbuf[0] = 0;
	if (coap_session_get_proto(cs) != COAP_PROTO_DTLS) {
		*sec = LWM2M_SEC_NOSEC;
		if (lwm2m_security_by_ep(s, ep)) {
			*why = "endpoint has credentials: NoSec refused";
			return -1;
		}
		return 0;
	}
	struct lwm2m_dtls_peer p;
	if (lwm2m_dtls_peer(cs, &p, why) < 0)
		return -1;
	*sec = p.sec;
	snprintf(idbuf, idlen, "%s", p.id);
	const struct lwm2m_cred *c = NULL;
	const char *bound = NULL;
	if (p.sec == LWM2M_SEC_PSK) {
		c = lwm2m_security_by_identity(s, (const uint8_t *)p.id, strlen(p.id));
		*why = "PSK identity no longer in the credentials";
	} else if (p.sec == LWM2M_SEC_RPK) {
		c = lwm2m_security_by_hash(s, LWM2M_SEC_RPK, p.hash);
		*why = "public key no longer in the credentials";
	} else if (!(bound = lwm2m_security_x509_ep(s, p.cn, p.hash, why))) {
		return -1;
	}
	if (c)
		bound = c->ep;
	if (!bound)
		return -1;
	if (strcmp(bound, ep) != 0) {
		*why = p.sec == LWM2M_SEC_PSK   ? "PSK identity is bound to another endpoint"
		       : p.sec == LWM2M_SEC_RPK ? "public key is bound to another endpoint"
		                                : "certificate is bound to another endpoint";
		return -1;
	}
	return 0;
}
