/*
 * libcurl's process-wide initialisation, done once for every user in the
 * library (downloads, the agent's transport). curl_global_init is not
 * thread-safe in every libcurl build, hence one pthread_once for all.
 * curl_global_cleanup is never called: a library cannot know when the last
 * user is gone, and libcurl's documentation accepts that.
 */
#ifndef TANDEM_EDGE_CURL_INIT_H
#define TANDEM_EDGE_CURL_INIT_H

#include "tandem/status.h"

tdm_status tdm_curl_global_init(tdm_err *err);

#endif
