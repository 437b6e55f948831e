// Typed wrappers for libcurl's variadic calls, which Swift cannot import.
#ifndef IDPSYNC_CCURL_SHIM_H
#define IDPSYNC_CCURL_SHIM_H
#include <curl/curl.h>

typedef size_t (*idpsync_curl_write_cb)(char *, size_t, size_t, void *);

static inline CURLcode idpsync_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode idpsync_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode idpsync_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode idpsync_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode idpsync_curl_setopt_write(CURL *h, CURLoption o, idpsync_curl_write_cb v) { return curl_easy_setopt(h, o, v); }
typedef int (*idpsync_curl_xferinfo_cb)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static inline CURLcode idpsync_curl_setopt_xferinfo(CURL *h, idpsync_curl_xferinfo_cb v) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, v); }
static inline CURLcode idpsync_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode idpsync_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }
#endif
