/*
 * Gateway authentication against real keys: two RSA keys made by the openssl
 * CLI, a JWKS written from their moduli, tokens signed by libjwt. Checks a
 * valid token per role, expiry and not-before with leeway, wrong issuer and
 * audience, a token signed by the other key, an unknown kid, kid rotation by
 * rewriting the JWKS, alg "none" and HS256-with-the-public-key (algorithm
 * confusion) refused, malformed tokens, API keys (plain and sha256:) and the
 * 401/403 outcomes of the whole check. The JWK->PEM conversion must equal
 * openssl's own public key PEM byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>

#include "base/json.h"
#include "base/sha256.h"
#include "cloud/auth.h"
#include "skip.h"

static char g_dir[256];
static char *g_priv[2], *g_pub[2]; /* PEM texts */
static char *g_n[2];               /* base64url moduli */
static int64_t g_now;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *b64url(const unsigned char *in, size_t len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len * 4 / 3 + 4);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = a[v & 63];
    }
    out[o] = 0;
    return out;
}

/* Reads "Modulus=HEX" from `openssl rsa -modulus` into base64url. */
static char *modulus_b64url(const char *key_path)
{
    char cmd[600], path[300];
    snprintf(path, sizeof path, "%s/mod.txt", g_dir);
    snprintf(cmd, sizeof cmd, "openssl rsa -in %s -noout -modulus > %s 2>/dev/null", key_path,
             path);
    if (system(cmd) != 0)
        return NULL;
    char *t = slurp(path);
    char *hex = t ? strchr(t, '=') : NULL;
    if (!hex) {
        free(t);
        return NULL;
    }
    hex++;
    size_t hl = strcspn(hex, "\r\n");
    unsigned char *bin = malloc(hl / 2 + 1);
    for (size_t i = 0; i + 1 < hl; i += 2) {
        char b[3] = {hex[i], hex[i + 1], 0};
        bin[i / 2] = (unsigned char)strtoul(b, NULL, 16);
    }
    char *r = b64url(bin, hl / 2);
    free(bin);
    free(t);
    return r;
}

static int setup(void **state)
{
    (void)state;
    if (system("openssl version > /dev/null 2>&1") != 0) {
        printf("SKIP: the openssl command is absent (Debian package openssl)\n");
        exit(TDM_SKIP_CODE);
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/tdm_test_auth_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    for (int i = 0; i < 2; i++) {
        char cmd[800], priv[300], pub[300];
        snprintf(priv, sizeof priv, "%s/k%d.pem", g_dir, i);
        snprintf(pub, sizeof pub, "%s/k%d.pub.pem", g_dir, i);
        snprintf(cmd, sizeof cmd,
                 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s "
                 "2>/dev/null && openssl pkey -in %s -pubout -out %s 2>/dev/null",
                 priv, priv, pub);
        assert_int_equal(system(cmd), 0);
        g_priv[i] = slurp(priv);
        g_pub[i] = slurp(pub);
        g_n[i] = modulus_b64url(priv);
        assert_non_null(g_priv[i]);
        assert_non_null(g_pub[i]);
        assert_non_null(g_n[i]);
    }
    g_now = (int64_t)time(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        return 1;
    for (int i = 0; i < 2; i++) {
        free(g_priv[i]);
        free(g_pub[i]);
        free(g_n[i]);
    }
    return 0;
}

/* JWKS with key i under kid "k<i>" for each i in mask. */
static void write_jwks(int mask)
{
    char text[4096] = "{\"keys\":[";
    bool first = true;
    for (int i = 0; i < 2; i++) {
        if (!(mask & (1 << i)))
            continue;
        char one[1024];
        snprintf(one, sizeof one,
                 "%s{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"k%d\","
                 "\"n\":\"%s\",\"e\":\"AQAB\"}",
                 first ? "" : ",", i, g_n[i]);
        strcat(text, one);
        first = false;
    }
    /* A key for another purpose is skipped, not an error. */
    strcat(text, ",{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\",\"x\":\"AA\",\"y\":\"AA\"}]}");
    char path[300];
    snprintf(path, sizeof path, "%s/jwks.json", g_dir);
    spit(path, text);
}

static tdm_auth *make_auth(void)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"jwt\":{\"jwks_file\":\"jwks.json\",\"issuer\":\"https://id.test\","
             "\"audience\":\"tandem\",\"leeway_s\":30},"
             "\"api_keys\":[{\"key\":\"dev-secret-123\",\"role\":\"operator\",\"name\":\"dev\"}],"
             "\"api_keys_file\":\"keys.txt\"}");
    char path[300];
    snprintf(path, sizeof path, "%s/keys.txt", g_dir);
    uint8_t d[TDM_SHA256_LEN];
    char hex[TDM_SHA256_HEX_LEN + 1], keys[512];
    tdm_sha256_buf("hashed-key-456", 14, d);
    tdm_sha256_hex(d, hex);
    snprintf(keys, sizeof keys,
             "# key role name\nobserver-key-789 observer watcher\n\nsha256:%s admin root\n", hex);
    spit(path, keys);
    tdm_json_doc *doc;
    tdm_err err;
    assert_int_equal(tdm_json_parse(cfg, strlen(cfg), 0, &doc, &err), TDM_OK);
    tdm_auth *a = NULL;
    tdm_status s = tdm_auth_create(tdm_json_root(doc), g_dir, &a, &err);
    if (s != TDM_OK)
        fail_msg("%s", err.msg);
    tdm_json_free(doc);
    return a;
}

typedef struct claims {
    const char *kid;
    int key;                  /* which private key signs */
    jwt_alg_t alg;            /* RS256 by default */
    int64_t exp_off, nbf_off; /* relative to g_now; nbf 0 = absent */
    const char *iss, *aud, *role, *roles_json, *sub;
    bool no_exp;
} claims;

static char *make_token(const claims *c)
{
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    if (c->kid)
        assert_int_equal(jwt_add_header(j, "kid", c->kid), 0);
    jwt_add_grant(j, "iss", c->iss ? c->iss : "https://id.test");
    jwt_add_grant(j, "aud", c->aud ? c->aud : "tandem");
    jwt_add_grant(j, "sub", c->sub ? c->sub : "alice");
    if (!c->no_exp)
        jwt_add_grant_int(j, "exp", (long)(g_now + (c->exp_off ? c->exp_off : 600)));
    if (c->nbf_off)
        jwt_add_grant_int(j, "nbf", (long)(g_now + c->nbf_off));
    if (c->role)
        jwt_add_grant(j, "role", c->role);
    if (c->roles_json)
        assert_int_equal(jwt_add_grants_json(j, c->roles_json), 0);
    int rc;
    if (c->alg == JWT_ALG_HS256) /* the algorithm-confusion forgery: public key as secret */
        rc = jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)g_pub[c->key],
                         (int)strlen(g_pub[c->key]));
    else
        rc = jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)g_priv[c->key],
                         (int)strlen(g_priv[c->key]));
    assert_int_equal(rc, 0);
    char *t = jwt_encode_str(j);
    assert_non_null(t);
    jwt_free(j);
    return t;
}

static tdm_status verify(tdm_auth *a, const claims *c, tdm_gw_principal *who, tdm_err *err)
{
    char *t = make_token(c);
    tdm_status s = tdm_auth_verify_jwt(a, t, g_now, who, err);
    free(t);
    return s;
}

static void test_pem_matches_openssl(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        char *pem;
        tdm_err err;
        assert_int_equal(tdm_jwk_rsa_to_pem(g_n[i], "AQAB", &pem, &err), TDM_OK);
        assert_string_equal(pem, g_pub[i]);
        free(pem);
    }
    char *pem = NULL;
    tdm_err err;
    assert_int_equal(tdm_jwk_rsa_to_pem("AQAB", "AQAB", &pem, &err), TDM_ERR_UNSUPPORTED);
    assert_null(pem);
    assert_int_equal(tdm_jwk_rsa_to_pem("!!!", "AQAB", &pem, &err), TDM_ERR_PARSE);
    assert_non_null(strstr(err.msg, "\"n\""));
}

static void test_valid_and_roles(void **state)
{
    (void)state;
    write_jwks(1);
    tdm_auth *a = make_auth();
    tdm_gw_principal who;
    tdm_err err;
    claims c = {.kid = "k0"};
    assert_int_equal(verify(a, &c, &who, &err), TDM_OK);
    assert_string_equal(who.subject, "alice");
    assert_int_equal(who.role, TDM_GW_ROLE_OBSERVER);
    c.role = "operator";
    assert_int_equal(verify(a, &c, &who, &err), TDM_OK);
    assert_int_equal(who.role, TDM_GW_ROLE_OPERATOR);
    c.role = NULL;
    c.roles_json = "{\"roles\":[\"observer\",\"admin\",\"wizard\"]}";
    assert_int_equal(verify(a, &c, &who, &err), TDM_OK);
    assert_int_equal(who.role, TDM_GW_ROLE_ADMIN);
    /* No kid with a single key in the JWKS: that key. */
    claims nokid = {0};
    assert_int_equal(verify(a, &nokid, &who, &err), TDM_OK);
    /* An audience array that contains ours. */
    char *t;
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    jwt_add_header(j, "kid", "k0");
    jwt_add_grants_json(j, "{\"aud\":[\"other\",\"tandem\"],\"iss\":\"https://id.test\"}");
    jwt_add_grant_int(j, "exp", (long)(g_now + 60));
    jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)g_priv[0], (int)strlen(g_priv[0]));
    t = jwt_encode_str(j);
    jwt_free(j);
    assert_int_equal(tdm_auth_verify_jwt(a, t, g_now, &who, &err), TDM_OK);
    free(t);
    /* An audience array without ours is refused. */
    assert_int_equal(jwt_new(&j), 0);
    jwt_add_header(j, "kid", "k0");
    jwt_add_grants_json(j, "{\"aud\":[\"other\",\"tandem2\"],\"iss\":\"https://id.test\"}");
    jwt_add_grant_int(j, "exp", (long)(g_now + 60));
    jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)g_priv[0], (int)strlen(g_priv[0]));
    t = jwt_encode_str(j);
    jwt_free(j);
    assert_int_equal(tdm_auth_verify_jwt(a, t, g_now, &who, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "audience"));
    free(t);
    tdm_auth_free(a);
}

static void expect_refused(tdm_auth *a, const claims *c, const char *why)
{
    tdm_gw_principal who;
    tdm_err err;
    err.msg[0] = 0;
    assert_int_not_equal(verify(a, c, &who, &err), TDM_OK);
    if (!strstr(err.msg, why))
        fail_msg("expected \"%s\" in \"%s\"", why, err.msg);
}

static void test_refusals(void **state)
{
    (void)state;
    write_jwks(1);
    tdm_auth *a = make_auth();
    claims c = {.kid = "k0", .exp_off = -100};
    expect_refused(a, &c, "expired");
    c.exp_off = -10; /* within the 30 s leeway */
    tdm_gw_principal who;
    tdm_err err;
    assert_int_equal(verify(a, &c, &who, &err), TDM_OK);
    claims nbf = {.kid = "k0", .nbf_off = 300};
    expect_refused(a, &nbf, "not valid before");
    claims noexp = {.kid = "k0", .no_exp = true};
    expect_refused(a, &noexp, "no \"exp\"");
    claims iss = {.kid = "k0", .iss = "https://evil.test"};
    expect_refused(a, &iss, "issuer");
    claims aud = {.kid = "k0", .aud = "someone-else"};
    expect_refused(a, &aud, "audience");
    claims wrong_key = {.kid = "k0", .key = 1};
    expect_refused(a, &wrong_key, "signature");
    claims unknown = {.kid = "nope"};
    expect_refused(a, &unknown, "not in the JWKS");
    claims hs = {.kid = "k0", .alg = JWT_ALG_HS256};
    expect_refused(a, &hs, "HS256");

    /* alg none, with and without a signature part. */
    const char *hdr = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    char pl[200];
    snprintf(pl, sizeof pl, "{\"iss\":\"https://id.test\",\"aud\":\"tandem\",\"exp\":%lld}",
             (long long)(g_now + 600));
    char *h64 = b64url((const unsigned char *)hdr, strlen(hdr));
    char *p64 = b64url((const unsigned char *)pl, strlen(pl));
    char tok[1024];
    snprintf(tok, sizeof tok, "%s.%s.", h64, p64);
    assert_int_equal(tdm_auth_verify_jwt(a, tok, g_now, &who, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "unsigned"));
    snprintf(tok, sizeof tok, "%s.%s.c2ln", h64, p64);
    assert_int_equal(tdm_auth_verify_jwt(a, tok, g_now, &who, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "\"none\""));
    free(h64);
    free(p64);

    /* Malformed. */
    static const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "!!.e30.c2ln", "e30.e30.c2ln", "bm90IGpzb24.e30.c2ln"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(tdm_auth_verify_jwt(a, bad[i], g_now, &who, &err), TDM_OK);
    /* Tampered payload: the signature no longer matches. */
    claims ok = {.kid = "k0", .role = "observer"};
    char *t = make_token(&ok);
    char *dot = strchr(t, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(tdm_auth_verify_jwt(a, t, g_now, &who, &err), TDM_ERR_INVALID_ARG);
    free(t);
    tdm_auth_free(a);
}

static void test_rotation(void **state)
{
    (void)state;
    write_jwks(1);
    tdm_auth *a = make_auth();
    tdm_gw_principal who;
    tdm_err err;
    claims c1 = {.kid = "k1", .key = 1};
    /* Publish k1 beside k0: the unknown kid triggers one re-read (at a later second). */
    write_jwks(3);
    int64_t saved = g_now;
    g_now = saved + 2;
    assert_int_equal(verify(a, &c1, &who, &err), TDM_OK);
    /* Retire k0: explicit reload; k0 tokens now fail, k1 still work. */
    write_jwks(2);
    assert_int_equal(tdm_auth_reload(a, &err), TDM_OK);
    claims c0 = {.kid = "k0"};
    expect_refused(a, &c0, "not in the JWKS");
    assert_int_equal(verify(a, &c1, &who, &err), TDM_OK);
    /* A broken JWKS on reload keeps the old keys. */
    char path[300];
    snprintf(path, sizeof path, "%s/jwks.json", g_dir);
    spit(path, "{\"keys\": [");
    assert_int_not_equal(tdm_auth_reload(a, &err), TDM_OK);
    assert_non_null(strstr(err.msg, "jwks.json"));
    assert_int_equal(verify(a, &c1, &who, &err), TDM_OK);
    g_now = saved;
    tdm_auth_free(a);
}

static void test_api_keys_and_check(void **state)
{
    (void)state;
    write_jwks(1);
    tdm_auth *a = make_auth();
    tdm_gw_principal who;
    tdm_err err;
    assert_int_equal(tdm_auth_verify_api_key(a, "dev-secret-123", &who, &err), TDM_OK);
    assert_string_equal(who.subject, "dev");
    assert_int_equal(who.role, TDM_GW_ROLE_OPERATOR);
    assert_int_equal(tdm_auth_verify_api_key(a, "hashed-key-456", &who, &err), TDM_OK);
    assert_int_equal(who.role, TDM_GW_ROLE_ADMIN);
    assert_int_equal(tdm_auth_verify_api_key(a, "observer-key-789", &who, &err), TDM_OK);
    assert_string_equal(who.subject, "watcher");
    assert_int_equal(tdm_auth_verify_api_key(a, "dev-secret-12", &who, &err), TDM_ERR_NOT_FOUND);

    /* The whole check: outcomes per credential and role. */
    assert_int_equal(tdm_auth_check(a, NULL, NULL, g_now, TDM_GW_ROLE_INFER, &who, &err),
                     TDM_AUTH_UNAUTHENTICATED);
    assert_int_equal(
        tdm_auth_check(a, NULL, "observer-key-789", g_now, TDM_GW_ROLE_INFER, &who, &err),
        TDM_AUTH_OK);
    assert_int_equal(
        tdm_auth_check(a, NULL, "observer-key-789", g_now, TDM_GW_ROLE_OPERATOR, &who, &err),
        TDM_AUTH_FORBIDDEN);
    assert_non_null(strstr(err.msg, "operator"));
    assert_int_equal(
        tdm_auth_check(a, "Bearer dev-secret-123", NULL, g_now, TDM_GW_ROLE_OPERATOR, &who, &err),
        TDM_AUTH_OK);
    assert_int_equal(
        tdm_auth_check(a, "Basic Zm9vOmJhcg==", NULL, g_now, TDM_GW_ROLE_INFER, &who, &err),
        TDM_AUTH_UNAUTHENTICATED);
    claims c = {.kid = "k0"};
    char *t = make_token(&c);
    char hdr[4096];
    snprintf(hdr, sizeof hdr, "Bearer %s", t);
    free(t);
    assert_int_equal(tdm_auth_check(a, hdr, NULL, g_now, TDM_GW_ROLE_INFER, &who, &err),
                     TDM_AUTH_OK);
    assert_int_equal(tdm_auth_check(a, hdr, NULL, g_now, TDM_GW_ROLE_OPERATOR, &who, &err),
                     TDM_AUTH_FORBIDDEN);
    assert_int_equal(tdm_auth_check(a, hdr, NULL, g_now + 3600, TDM_GW_ROLE_INFER, &who, &err),
                     TDM_AUTH_UNAUTHENTICATED);
    tdm_auth_free(a);
}

static void test_bad_config(void **state)
{
    (void)state;
    write_jwks(1);
    char path[300];
    snprintf(path, sizeof path, "%s/badkeys.txt", g_dir);
    spit(path, "good-key-abcdef observer\nother-key-abcdef wizard x\n");
    static const struct {
        const char *cfg, *msg;
    } cases[] = {
        {"{}", "no api_keys"},
        {"{\"mode\":\"jwt\",\"api_keys_file\":\"badkeys.txt\"}", "needs a jwt section"},
        {"{\"api_keys_file\":\"badkeys.txt\"}", "line 2: role \"wizard\""},
        {"{\"api_keys_file\":\"missing.txt\"}", "missing.txt"},
        {"{\"jwt\":{}}", "jwks_file is required"},
        {"{\"jwt\":{\"jwks_file\":\"jwks.json\",\"leeway\":3}}", "auth.jwt.leeway"},
        {"{\"jwt\":{\"jwks_file\":\"jwks.json\",\"leeway_s\":-3}}", "leeway_s"},
        {"{\"api_keys\":[{\"key\":\"short\",\"role\":\"admin\"}]}", "at least 8"},
        {"{\"tls\":1}", "auth.tls"},
        {"{\"mode\":\"magic\"}", "magic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tdm_json_doc *doc;
        tdm_err err;
        assert_int_equal(tdm_json_parse(cases[i].cfg, strlen(cases[i].cfg), 0, &doc, &err), TDM_OK);
        tdm_auth *a = (tdm_auth *)1;
        assert_int_not_equal(tdm_auth_create(tdm_json_root(doc), g_dir, &a, &err), TDM_OK);
        assert_null(a);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, cases[i].msg, err.msg);
        tdm_json_free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_matches_openssl),
        cmocka_unit_test(test_valid_and_roles),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_api_keys_and_check),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
