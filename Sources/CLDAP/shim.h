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
#endif
