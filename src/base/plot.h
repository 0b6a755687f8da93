/*
 * A small chart writer: line and scatter plots saved as PNG.
 *
 * Why our own: the experiments (cascade accuracy vs fraction sent, codec
 * rate vs accuracy) need a figure in the docs that the C tools can write
 * themselves, from the same numbers they print, without a plotting stack at
 * run time. A chart here is axes with "nice" ticks (1, 2, 5 x 10^k, or
 * decades on a log-scale x axis), tick labels, a title, axis labels, and any
 * number of series, each a polyline and/or point markers in its own colour,
 * named in a legend. Text uses a built-in 5x7 bitmap font (printable ASCII
 * plus a few Latin-1 signs such as the multiplication sign), so the output
 * does not depend on the fonts of the machine.
 *
 * The PNG is written with zlib (compress2 for the IDAT stream, crc32 for the
 * chunk checksums): 8-bit RGB, no interlace, filter type 0 on every row.
 * tdm_png_encode is exposed on its own so any RGB image can be saved.
 *
 * Usage: create, set labels and options, add series (the data is copied),
 * write, free. Nothing is drawn until tdm_plot_render/tdm_plot_write_png,
 * so the axis ranges can cover every series. Non-finite points (and points
 * with x <= 0 on a log-scale x axis) are skipped and break the line there.
 */
#ifndef TANDEM_BASE_PLOT_H
#define TANDEM_BASE_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tdm_plot tdm_plot;

/* How a series is drawn. */
typedef enum tdm_plot_style {
    TDM_PLOT_LINE = 1,        /* polyline through the points in the order given */
    TDM_PLOT_POINTS = 2,      /* a square marker at each point (scatter) */
    TDM_PLOT_LINE_POINTS = 3, /* both */
} tdm_plot_style;

/* Limits on a plot's size, in pixels. */
#define TDM_PLOT_MIN_SIZE 160
#define TDM_PLOT_MAX_SIZE 8192
/* Longest title or label kept (longer ones are cut). */
#define TDM_PLOT_MAX_TEXT 160

/* A white w x h canvas (both TDM_PLOT_MIN_SIZE..TDM_PLOT_MAX_SIZE). */
tdm_status tdm_plot_create(int width, int height, tdm_plot **out, tdm_err *err);
void tdm_plot_free(tdm_plot *p);

/* Texts (UTF-8; copied; NULL clears). */
tdm_status tdm_plot_title(tdm_plot *p, const char *title, tdm_err *err);
tdm_status tdm_plot_labels(tdm_plot *p, const char *x_label, const char *y_label, tdm_err *err);
/* Log-scale (base 10) x axis. */
void tdm_plot_log_x(tdm_plot *p, bool on);
/*
 * Fixes an axis range instead of fitting the data (lo < hi, finite; lo > 0
 * for a log x axis). Points outside are clipped to the plot area.
 */
tdm_status tdm_plot_x_range(tdm_plot *p, double lo, double hi, tdm_err *err);
tdm_status tdm_plot_y_range(tdm_plot *p, double lo, double hi, tdm_err *err);

/*
 * Adds a series of n points (x[i], y[i]); name goes in the legend (NULL or
 * "" for none). Colours follow a fixed palette in the order series are added.
 */
tdm_status tdm_plot_series(tdm_plot *p, const char *name, const double *x, const double *y,
                           size_t n, tdm_plot_style style, tdm_err *err);

/*
 * Draws the chart into a malloc'd RGB buffer of width*height*3 bytes (row
 * major, top row first). The caller frees *rgb.
 */
tdm_status tdm_plot_render(const tdm_plot *p, uint8_t **rgb, int *width, int *height, tdm_err *err);

/*
 * Where data point (x, y) lands in the rendered image, in pixel coordinates
 * (x right, y down), with the layout the current texts and series give.
 * TDM_ERR_INVALID_ARG for x <= 0 on a log-scale x axis.
 */
tdm_status tdm_plot_to_pixel(const tdm_plot *p, double x, double y, double *px, double *py);

/* Renders and writes a PNG file. */
tdm_status tdm_plot_write_png(const tdm_plot *p, const char *path, tdm_err *err);

/* Encodes an 8-bit RGB image as PNG bytes into a malloc'd buffer. */
tdm_status tdm_png_encode(const uint8_t *rgb, int width, int height, uint8_t **png, size_t *len,
                          tdm_err *err);

/* Width in pixels of text drawn at a scale (1 = 6 pixels per character). */
int tdm_plot_text_width(const char *text, int scale);

#ifdef __cplusplus
}
#endif
#endif
