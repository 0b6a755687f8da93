/*
 * YAML configuration files, read into the same tree as JSON.
 *
 * Configs (the gateway's, model.yaml, the edge agent's) are YAML for people and JSON
 * trees for code: libyaml parses the file into events, which are re-emitted as JSON text
 * and parsed by the strict JSON reader, so every consumer walks one tree type with one
 * API (src/base/json.h). The conversion keeps YAML's meaning for the subset configs use:
 * mappings, sequences, block and flow styles, quoted and plain scalars, comments. Plain
 * scalars become numbers (decimal ints and floats), true/false, null (null, ~, empty) or
 * strings; quoted scalars are always strings. Anchors/aliases, tags and multiple documents
 * are refused with a message rather than half-supported. Mapping keys must be scalars.
 * Errors give "line L, column C: what" from libyaml's marks.
 */
#ifndef TANDEM_BASE_YAML_H
#define TANDEM_BASE_YAML_H

#include <stddef.h>

#include "base/json.h"
#include "tandem/status.h"

/* Parses YAML text[0..len) into a JSON document (free with tdm_json_free). An empty
 * document becomes an empty object. */
tdm_status tdm_yaml_parse(const char *text, size_t len, tdm_json_doc **out, tdm_err *err);

/* Reads and parses a file; errors are prefixed with the path. Files larger than 16 MiB are
 * refused. */
tdm_status tdm_yaml_read_file(const char *path, tdm_json_doc **out, tdm_err *err);

#endif
