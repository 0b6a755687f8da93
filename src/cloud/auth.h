/*
 * Gateway authentication: API keys (for development) and JWT bearer tokens
 * (RS256 only) whose public keys come from a JWKS file, with roles.
 *
 * Config (the "auth" section; `auth: none` turns authentication off and is
 * handled by the server before this module is created):
 *
 *     auth:
 *       api_keys_file: keys.txt      # lines "KEY ROLE NAME" or "sha256:HEX ROLE NAME"
 *       api_keys:                    # or inline, same fields
 *         - {key: dev-secret, role: operator, name: dev}
 *       jwt:
 *         jwks_file: jwks.json       # {"keys": [{"kty": "RSA", "kid", "n", "e"}]}
 *         issuer: https://id.example.com   # required "iss" (optional setting)
 *         audience: tandem                 # required in "aud" (optional setting)
 *         leeway_s: 30                     # clock skew allowed on exp/nbf
 *
 * Relative paths are relative to the config file's directory. Both kinds may
 * be configured at once; at least one must be.
 *
 * Why verification is split between this file and libjwt: libjwt 1.10 checks
 * a signature with whatever algorithm the token's header names, so a token
 * saying "HS256" would be checked with the RSA public key used as an HMAC
 * secret (the classic algorithm-confusion forgery), and "none" would need no
 * key at all. So the header is decoded and checked here first (alg must be
 * RS256, kid picks the key), libjwt then verifies the signature with exactly
 * that key, and the claims (exp, nbf, iss, aud, roles) are read here from the
 * verified payload with the project's strict JSON reader.
 *
 * Key rotation: the module re-reads the JWKS and API key files when their
 * mtime or size changes (checked at most once a second, by tdm_auth_check),
 * and a token whose kid is not in the loaded JWKS forces a re-read (again at
 * most once a second) before it is refused; so an operator publishes or
 * retires a key by rewriting a file. tdm_auth_reload re-reads both files at
 * once (the server's reload hook). A file that fails to parse keeps the old
 * keys in use. Key sets are immutable once built and swapped under a
 * read-write lock, so verification never sees half a reload.
 *
 * Roles: "observer" (= may infer: any valid credential), "operator"
 * (registry changes), "admin". A token names them in a "role" string or a
 * "roles" array (the highest counts); a token with neither is an observer.
 * API keys are kept only as SHA-256 digests and compared in constant time.
 */
#ifndef TANDEM_CLOUD_AUTH_H
#define TANDEM_CLOUD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "cloud/http.h"
#include "tandem/status.h"

typedef struct tdm_auth tdm_auth;

/* The hooks the server calls (http.h); routes.c returns a pointer to this. */
extern const tdm_gw_auth_hooks tdm_gw_auth_default_hooks;

/* Builds the module from the "auth" section (an object; see above). */
tdm_status tdm_auth_create(const tdm_json *cfg, const char *config_dir, tdm_auth **out,
                           tdm_err *err);
void tdm_auth_free(tdm_auth *a);
/* Re-reads the API key file and the JWKS file; on error the old keys stay in use. */
tdm_status tdm_auth_reload(tdm_auth *a, tdm_err *err);

/* Verifies a JWT at time now_s (Unix seconds) and fills who (role from its claims). */
tdm_status tdm_auth_verify_jwt(tdm_auth *a, const char *token, int64_t now_s, tdm_gw_principal *who,
                               tdm_err *err);
/* Looks up an API key; TDM_ERR_NOT_FOUND when it is not one of ours. */
tdm_status tdm_auth_verify_api_key(tdm_auth *a, const char *key, tdm_gw_principal *who,
                                   tdm_err *err);

typedef enum tdm_auth_outcome {
    TDM_AUTH_OK = 0,
    TDM_AUTH_UNAUTHENTICATED, /* 401: no, malformed, expired or unknown credentials */
    TDM_AUTH_FORBIDDEN,       /* 403: valid credentials, role too low */
} tdm_auth_outcome;

/*
 * The whole check for one request: credentials from `Authorization: Bearer X`
 * (a JWT when X has two dots, else an API key) or `X-API-Key: X`; then the
 * role. err says why when the outcome is not OK.
 */
tdm_auth_outcome tdm_auth_check(tdm_auth *a, const char *authorization, const char *api_key,
                                int64_t now_s, tdm_gw_role required, tdm_gw_principal *who,
                                tdm_err *err);

/* "observer"/"infer" -> OBSERVER, "operator", "admin"; false when unknown. */
bool tdm_auth_role_parse(const char *s, tdm_gw_role *out);
const char *tdm_auth_role_name(tdm_gw_role r);

/*
 * Mutual TLS. libmicrohttpd, given a client CA (MHD_OPTION_HTTPS_MEM_TRUST),
 * only *requests* a client certificate during the handshake; it neither
 * requires nor verifies one. The server calls this for every request on a
 * listener with tls.client_ca: true when the peer presented a certificate
 * chain that verifies against that CA (signature, validity dates); otherwise
 * resp holds a 401 "client_certificate_required" and the request is not
 * dispatched. mhd_connection is the request's struct MHD_Connection *.
 */
bool tdm_gw_tls_client_check(void *mhd_connection, tdm_gw_response *resp);

/* ---- pieces, exposed for tests and tools ---------------------------------------------- */

/* base64url (RFC 4648 section 5) without padding (trailing '=' tolerated when allow_pad).
 * *out is malloc'ed (NUL-terminated), *out_len its length. */
tdm_status tdm_b64url_decode(const char *s, size_t len, bool allow_pad, unsigned char **out,
                             size_t *out_len, tdm_err *err);

/* An RSA public key from its JWK members (base64url n and e) as a PEM
 * "PUBLIC KEY" (SubjectPublicKeyInfo) string, malloc'ed. */
tdm_status tdm_jwk_rsa_to_pem(const char *n_b64url, const char *e_b64url, char **pem, tdm_err *err);

#endif
