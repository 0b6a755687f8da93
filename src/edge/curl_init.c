/* See curl_init.h. */
#include "edge/curl_init.h"

#include <curl/curl.h>
#include <pthread.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_rc = CURLE_OK;

static void init_once(void)
{
    g_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

tdm_status tdm_curl_global_init(tdm_err *err)
{
    pthread_once(&g_once, init_once);
    if (g_rc != CURLE_OK)
        return tdm_errf(err, TDM_ERR_IO, "libcurl initialisation failed: %s",
                        curl_easy_strerror(g_rc));
    return TDM_OK;
}
