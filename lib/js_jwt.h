/* Packet Broker bearer tokens: JWTs signed ES256, RS256 or EdDSA (Ed25519), verified with gnutls
 * against the issuer's JWKS (a file, or an https URL fetched with libcurl and cached), and
 * checked for iss, aud, exp and nbf. */
#ifndef JS_JWT_H
#define JS_JWT_H

#include <stddef.h>
#include <time.h>

struct js_jwt;

/* jwks: a file path or an http(s):// URL. NULL with a reason in err when the keys cannot be had. */
struct js_jwt *js_jwt_new(const char *issuer, const char *audience, const char *jwks, char *err, size_t errlen);
void js_jwt_free(struct js_jwt *j);
/* Fetch the keys again (SIGHUP). */
void js_jwt_reload(struct js_jwt *j);
/* 0 when token is valid now, -1 with a reason in err. Thread-safe. */
int js_jwt_verify(struct js_jwt *j, const char *token, char *err, size_t errlen);
/* The same at a given time (tests). */
int js_jwt_verify_at(struct js_jwt *j, const char *token, time_t now, char *err, size_t errlen);

#endif
