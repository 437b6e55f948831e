// Typed helpers for the parts of libldap that Swift cannot import (pointer-cast macros).
#ifndef IDPSYNC_CLDAP_SHIM_H
#define IDPSYNC_CLDAP_SHIM_H
#include <ldap.h>
#include <lber.h>
#include <sys/time.h>

static inline int idpsync_ldap_set_int(LDAP *ld, int option, int value) {
    return ldap_set_option(ld, option, &value);
}
static inline int idpsync_ldap_set_off(LDAP *ld, int option) {
    return ldap_set_option(ld, option, LDAP_OPT_OFF);
}
static inline int idpsync_ldap_set_on(LDAP *ld, int option) {
    return ldap_set_option(ld, option, LDAP_OPT_ON);
}
static inline int idpsync_ldap_set_timeval(LDAP *ld, int option, long seconds) {
    struct timeval tv = { seconds, 0 };
    return ldap_set_option(ld, option, &tv);
}
static inline int idpsync_ldap_set_string(LDAP *ld, int option, const char *value) {
    return ldap_set_option(ld, option, value);
}
/// Clears a string option (NULL value), e.g. a CA directory a config file set.
static inline int idpsync_ldap_clear_string(LDAP *ld, int option) {
    return ldap_set_option(ld, option, NULL);
}
/// Returns the diagnostic message of the last operation, or NULL; free with ldap_memfree.
static inline char *idpsync_ldap_diagnostic(LDAP *ld) {
    char *msg = NULL;
    if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS) return NULL;
    return msg;
}
static inline int idpsync_ldap_result_code(LDAP *ld) {
    int rc = 0;
    ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc);
    return rc;
}
/* RFC 4533 (LDAP Content Synchronization). Debian ships no ldap_sync.h, and ber_printf and
   ber_scanf are variadic: one typed wrapper per format the feed uses. The scanners return the
   tag read, or LBER_ERROR ((ber_tag_t)-1) on malformed input; "m" points into the element's own
   buffer (no copy, valid until ber_free). */

/// syncRequestValue ::= SEQUENCE { mode ENUMERATED, cookie OCTET STRING OPTIONAL,
/// reloadHint BOOLEAN DEFAULT FALSE }, DER, into *out (free with ber_bvfree); 0 or -1.
static inline int idpsync_sync_request_value(int mode, const struct berval *cookie, int reload_hint,
                                             struct berval **out) {
    *out = NULL;
    BerElement *ber = ber_alloc_t(LBER_USE_DER);
    if (ber == NULL) return -1;
    int rc = ber_printf(ber, "{e", (ber_int_t)mode);
    if (rc != -1 && cookie != NULL) rc = ber_printf(ber, "O", cookie);
    if (rc != -1 && reload_hint) rc = ber_printf(ber, "b", (ber_int_t)1);
    if (rc != -1) rc = ber_printf(ber, "N}");
    if (rc != -1) rc = ber_flatten(ber, out);
    ber_free(ber, 1);
    return rc == -1 ? -1 : 0;
}
/// ber_scanf "{em": a SEQUENCE's start, an ENUMERATED and an OCTET STRING (syncStateValue).
static inline ber_tag_t idpsync_ber_scan_enum_string(BerElement *ber, ber_int_t *value, struct berval *string) {
    return ber_scanf(ber, "{em", value, string);
}
/// ber_scanf "m": the next element's contents (any tag).
static inline ber_tag_t idpsync_ber_scan_string(BerElement *ber, struct berval *string) {
    return ber_scanf(ber, "m", string);
}
/// ber_scanf "b": a BOOLEAN.
static inline ber_tag_t idpsync_ber_scan_bool(BerElement *ber, ber_int_t *value) {
    return ber_scanf(ber, "b", value);
}
/// Caps the size of one incoming LDAP message on this handle (0: libldap's default, none).
static inline int idpsync_ldap_set_max_incoming(LDAP *ld, ber_len_t max) {
    Sockbuf *sb = NULL;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL) return -1;
    return ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max) == 1 ? 0 : -1;
}
#endif
