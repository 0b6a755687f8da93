/*
 * The feature codec: what crosses the network at a cut.
 *
 * Split inference only saves bandwidth if the activations at the cut are sent
 * compactly, so tandem has its own codec in the style of zstd: a handful of
 * functions over caller-owned buffers, a bound function, status codes, and a
 * decoder that treats every byte as hostile. A frame is self-describing
 * (magic, version, dtype, shape, layout, codec parameters, payload length,
 * CRC32C) so that the receiving side needs no out-of-band agreement; a
 * decoder refuses a frame whose version is newer than its own with a clear
 * message instead of misreading it. docs/codec.md specifies the format.
 *
 * The pipeline of one encode: optional rounding to zero of small values
 * (an absolute threshold, or a fraction of the tensor's max |x|),
 * optional top-k sparsification (positions coded as a bitmap or as run
 * lengths, whichever is smaller), then the value coder (float32 byte planes
 * for lossless, float16, or affine int8/int4 per tensor or per channel with
 * min/max or percentile clipping), then a static two-pass rANS coder with
 * context modelling over the resulting symbols, or over runs of equal
 * symbols (frame version 2), or raw bytes, whichever is smallest. Decoding
 * always yields float32.
 */
#ifndef TANDEM_CODEC_H
#define TANDEM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"
#include "tandem/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The newest frame version this build writes and reads. Version 2 writes the
 * header's dims and payload length as varints and adds run-length symbol
 * streams; version-1 frames still decode.
 */
#define TDM_CODEC_VERSION 2

typedef enum tdm_codec_mode {
    TDM_CODEC_MODE_LOSSLESS = 0, /* float32 bit-exact: byte planes + entropy coder */
    TDM_CODEC_MODE_F16 = 1,      /* IEEE half, round to nearest even */
    TDM_CODEC_MODE_INT8 = 2,     /* affine 8-bit */
    TDM_CODEC_MODE_INT4 = 3,     /* affine 4-bit */
} tdm_codec_mode;

typedef enum tdm_codec_granularity {
    TDM_CODEC_GRANULARITY_TENSOR = 0,  /* one scale and zero point */
    TDM_CODEC_GRANULARITY_CHANNEL = 1, /* one per index of channel_axis */
} tdm_codec_granularity;

typedef enum tdm_codec_clip {
    TDM_CODEC_CLIP_MINMAX = 0,     /* range = [min, max] of the finite values */
    TDM_CODEC_CLIP_PERCENTILE = 1, /* range = [P(100 - p), P(p)] */
} tdm_codec_clip;

typedef struct tdm_codec_params {
    tdm_codec_mode mode;
    tdm_codec_granularity granularity; /* int8/int4 only */
    int32_t channel_axis;              /* per-channel: axis of the channels (negative counts
                                          from the end) */
    tdm_codec_clip clip;               /* int8/int4 only */
    float percentile;                  /* clip == PERCENTILE: p in [50, 100] */
    float zero_threshold;              /* |x| < threshold becomes 0 (0 disables) */
    float topk_fraction;               /* keep this fraction of largest |x| (0 disables) */
    int64_t topk_count;                /* keep this many largest |x| (0 disables; wins over
                                          topk_fraction) */
    bool entropy;                      /* rANS-code the symbols (raw bytes when false) */
    float zero_fraction;               /* |x| < zero_fraction * max |x| of the tensor becomes
                                          0, in [0, 1) (0 disables; with zero_threshold the
                                          larger threshold applies) */
} tdm_codec_params;

/* Fills p with the defaults of a mode: per-tensor, min/max, no sparsity, entropy on. */
void tdm_codec_params_default(tdm_codec_params *p, tdm_codec_mode mode);

/* What a frame header says (filled by tdm_codec_frame_info). */
typedef struct tdm_codec_header {
    uint32_t version;
    tdm_codec_mode mode;
    tdm_dtype dtype; /* of the decoded tensor: float32 */
    int32_t ndim;
    int64_t dims[TDM_MAX_DIMS];
    uint32_t layout; /* 0 = dense row-major */
    bool per_channel;
    int32_t channel_axis;
    bool sparse;         /* top-k positions are coded */
    bool has_exceptions; /* NaN/Inf kept exactly beside a quantised payload */
    bool entropy;        /* the encoder was asked to entropy-code */
    size_t header_len;   /* bytes before the payload */
    size_t payload_len;
    size_t frame_len;     /* header + payload + 4-byte CRC32C */
    size_t decoded_bytes; /* bytes of the float32 tensor decode() allocates */
} tdm_codec_header;

/*
 * Largest frame tdm_codec_encode can write for a tensor of t's shape under
 * params p (t->data is not read). Returns 0 when the shape or params are
 * invalid or the bound overflows size_t.
 */
size_t tdm_codec_bound(const tdm_tensor *t, const tdm_codec_params *p);

/*
 * Encodes a float32 tensor into dst[0, cap). On success *written is the frame
 * length. cap >= tdm_codec_bound() always suffices; a smaller cap may too, and
 * gives TDM_ERR_INVALID_ARG when it does not. Thread-safe; allocates scratch.
 */
tdm_status tdm_codec_encode(const tdm_tensor *t, const tdm_codec_params *p, void *dst, size_t cap,
                            size_t *written, tdm_err *err);

/*
 * Reads a frame header from src[0, len) without checking the payload or CRC:
 * enough to learn frame_len (to read the rest of a frame from a socket) and
 * the shape. Needs only the header bytes.
 */
tdm_status tdm_codec_frame_info(const void *src, size_t len, tdm_codec_header *info, tdm_err *err);

/*
 * Decodes one whole frame (len must be exactly its frame_len) into an owned
 * float32 tensor *out. Frames whose decoded tensor would exceed max_bytes are
 * refused before anything is allocated; all scratch is a small multiple of
 * the decoded size. *out is left empty on error.
 */
tdm_status tdm_codec_decode(const void *src, size_t len, tdm_tensor *out, size_t max_bytes,
                            tdm_err *err);

/* "lossless", "f16", "int8", "int4"; "?" otherwise. */
const char *tdm_codec_mode_name(tdm_codec_mode m);
/* Parses a mode name; false when unknown. */
bool tdm_codec_mode_parse(const char *s, tdm_codec_mode *m);

#ifdef __cplusplus
}
#endif
#endif
