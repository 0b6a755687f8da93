/*
 * Chart rendering and PNG encoding (see plot.h for the why).
 *
 * Layout is computed once per render from the texts and the tick labels:
 * the left margin fits the widest y tick label and the rotated y label, the
 * bottom margin the x tick labels and the x label, the top margin the title.
 * Ticks are "nice" steps (1, 2 or 5 x 10^k) chosen for about six ticks; an
 * automatic linear range is widened to whole steps so the axes start and end
 * on a labelled tick. Segments are clipped to the plot area (Liang-Barsky)
 * in doubles before they become pixels, so a far-away point can neither
 * overflow an int nor draw outside the frame. Lines are Bresenham with a
 * square brush; the legend goes in the corner of the plot area that covers
 * the fewest data points.
 */
#include "base/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/alloc.h"

typedef struct plot_series {
    char *name;
    double *x, *y;
    size_t n;
    tdm_plot_style style;
} plot_series;

struct tdm_plot {
    int w, h;
    char *title, *x_label, *y_label;
    bool log_x;
    bool x_fixed, y_fixed;
    double x_lo, x_hi, y_lo, y_hi;
    plot_series *series;
    size_t n_series;
};

/* 5x9 cells for ASCII 32..126: 7 rows above the baseline and 2 for descenders (g, j, p, q, y),
 * one byte per row, bit 4 = leftmost column. */
static const uint8_t k_font[95][9] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ' ' */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04, 0x00, 0x00}, /* '!' */
    {0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* '"' */
    {0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a, 0x00, 0x00}, /* '#' */
    {0x04, 0x0f, 0x14, 0x0e, 0x05, 0x1e, 0x04, 0x00, 0x00}, /* '$' */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00}, /* '%' */
    {0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d, 0x00, 0x00}, /* '&' */
    {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* "'" */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00}, /* '(' */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00}, /* ')' */
    {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00, 0x00, 0x00}, /* '*' */
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00, 0x00, 0x00}, /* '+' */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c, 0x04, 0x08}, /* ',' */
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00}, /* '-' */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c, 0x00, 0x00}, /* '.' */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00, 0x00}, /* '/' */
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e, 0x00, 0x00}, /* '0' */
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}, /* '1' */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00}, /* '2' */
    {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e, 0x00, 0x00}, /* '3' */
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02, 0x00, 0x00}, /* '4' */
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e, 0x00, 0x00}, /* '5' */
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e, 0x00, 0x00}, /* '6' */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00}, /* '7' */
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e, 0x00, 0x00}, /* '8' */
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c, 0x00, 0x00}, /* '9' */
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00, 0x00, 0x00}, /* ':' */
    {0x00, 0x0c, 0x0c, 0x00, 0x00, 0x0c, 0x0c, 0x04, 0x08}, /* ';' */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02, 0x00, 0x00}, /* '<' */
    {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00}, /* '=' */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08, 0x00, 0x00}, /* '>' */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00, 0x00}, /* '?' */
    {0x0e, 0x11, 0x01, 0x0d, 0x15, 0x15, 0x0e, 0x00, 0x00}, /* '@' */
    {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00}, /* 'A' */
    {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e, 0x00, 0x00}, /* 'B' */
    {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00}, /* 'C' */
    {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c, 0x00, 0x00}, /* 'D' */
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f, 0x00, 0x00}, /* 'E' */
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00}, /* 'F' */
    {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f, 0x00, 0x00}, /* 'G' */
    {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00}, /* 'H' */
    {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}, /* 'I' */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c, 0x00, 0x00}, /* 'J' */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00, 0x00}, /* 'K' */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f, 0x00, 0x00}, /* 'L' */
    {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00, 0x00}, /* 'M' */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00, 0x00}, /* 'N' */
    {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}, /* 'O' */
    {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00}, /* 'P' */
    {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d, 0x00, 0x00}, /* 'Q' */
    {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11, 0x00, 0x00}, /* 'R' */
    {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e, 0x00, 0x00}, /* 'S' */
    {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* 'T' */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}, /* 'U' */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00}, /* 'V' */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a, 0x00, 0x00}, /* 'W' */
    {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11, 0x00, 0x00}, /* 'X' */
    {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* 'Y' */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f, 0x00, 0x00}, /* 'Z' */
    {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e, 0x00, 0x00}, /* '[' */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00, 0x00, 0x00}, /* '\\' */
    {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e, 0x00, 0x00}, /* ']' */
    {0x04, 0x0a, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* '^' */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00}, /* '_' */
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* '`' */
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f, 0x00, 0x00}, /* 'a' */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e, 0x00, 0x00}, /* 'b' */
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00}, /* 'c' */
    {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f, 0x00, 0x00}, /* 'd' */
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e, 0x00, 0x00}, /* 'e' */
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08, 0x00, 0x00}, /* 'f' */
    {0x00, 0x00, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* 'g' */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* 'h' */
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}, /* 'i' */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}, /* 'j' */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00}, /* 'k' */
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00}, /* 'l' */
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11, 0x00, 0x00}, /* 'm' */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* 'n' */
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00}, /* 'o' */
    {0x00, 0x00, 0x1e, 0x11, 0x11, 0x11, 0x1e, 0x10, 0x10}, /* 'p' */
    {0x00, 0x00, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x01}, /* 'q' */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00}, /* 'r' */
    {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e, 0x00, 0x00}, /* 's' */
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00}, /* 't' */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d, 0x00, 0x00}, /* 'u' */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00}, /* 'v' */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a, 0x00, 0x00}, /* 'w' */
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00, 0x00}, /* 'x' */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* 'y' */
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00}, /* 'z' */
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02, 0x00, 0x00}, /* '{' */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* '|' */
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08, 0x00, 0x00}, /* '}' */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00, 0x00, 0x00}, /* '~' */
};

/* A few Latin-1 signs that charts use. */
static const struct {
    uint32_t cp;
    uint8_t rows[9];
} k_font_extra[] = {
    {0x00d7, {0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00, 0x00, 0x00}},
    {0x00b5, {0x00, 0x00, 0x11, 0x11, 0x11, 0x19, 0x16, 0x10, 0x10}},
    {0x00b0, {0x0c, 0x12, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
};

static const uint8_t k_palette[][3] = {
    {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};
#define N_PALETTE (sizeof k_palette / sizeof k_palette[0])
#define MAX_TICKS 32

static const uint8_t k_black[3] = {0, 0, 0};
static const uint8_t k_grid[3] = {225, 225, 225};
static const uint8_t k_frame[3] = {60, 60, 60};

/* ---- canvas ---------------------------------------------------------------------------- */

typedef struct canvas {
    uint8_t *px;
    int w, h;
    int cx0, cy0, cx1, cy1; /* clip rectangle, inclusive */
} canvas;

static void put(canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x < c->cx0 || x > c->cx1 || y < c->cy0 || y > c->cy1)
        return;
    uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
}

static void fill(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            put(c, x, y, rgb);
}

/* Bresenham with a (2r+1)-pixel square brush. */
static void line(canvas *c, int x0, int y0, int x1, int y1, int r, const uint8_t rgb[3])
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        fill(c, x0 - r, y0 - r, x0 + r, y0 + r, rgb);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

/* ---- text ------------------------------------------------------------------------------ */

/* Next code point of UTF-8 text; malformed bytes read as '?'. */
static uint32_t utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t cp = p[0];
    int extra = cp < 0x80             ? 0
                : (cp & 0xE0) == 0xC0 ? 1
                : (cp & 0xF0) == 0xE0 ? 2
                : (cp & 0xF8) == 0xF0 ? 3
                                      : -1;
    if (extra < 0) {
        *s += 1;
        return '?';
    }
    cp &= extra == 0 ? 0x7F : (0x3F >> extra);
    for (int k = 1; k <= extra; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            *s += k;
            return '?';
        }
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    *s += 1 + extra;
    return cp;
}

static const uint8_t *glyph(uint32_t cp)
{
    if (cp >= 32 && cp < 127)
        return k_font[cp - 32];
    for (size_t i = 0; i < sizeof k_font_extra / sizeof k_font_extra[0]; i++)
        if (k_font_extra[i].cp == cp)
            return k_font_extra[i].rows;
    return k_font['?' - 32];
}

int tdm_plot_text_width(const char *text, int scale)
{
    int n = 0;
    if (text != NULL)
        while (*text) {
            (void)utf8_next(&text);
            n++;
        }
    return n > 0 ? (6 * n - 1) * scale : 0;
}

/* Draws text with its top-left corner at (x, y); vertical = rotated 90 degrees counter-clockwise
 * (reading upwards), then (x, y) is the bottom-left corner of the rotated text. */
static void text(canvas *c, int x, int y, const char *s, int scale, bool vertical,
                 const uint8_t rgb[3])
{
    if (s == NULL)
        return;
    int pos = 0;
    while (*s) {
        const uint8_t *g = glyph(utf8_next(&s));
        for (int row = 0; row < 9; row++)
            for (int col = 0; col < 5; col++) {
                if (!(g[row] & (0x10 >> col)))
                    continue;
                int u = pos + col * scale, v = row * scale;
                if (vertical)
                    fill(c, x + v, y - u - scale + 1, x + v + scale - 1, y - u, rgb);
                else
                    fill(c, x + u, y + v, x + u + scale - 1, y + v + scale - 1, rgb);
            }
        pos += 6 * scale;
    }
}

/* ---- ticks ----------------------------------------------------------------------------- */

/* The nice step (1, 2 or 5 x 10^k) nearest to span / target. */
static double nice_step(double span, int target)
{
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

typedef struct ticks {
    double v[MAX_TICKS];
    char label[MAX_TICKS][24];
    int n;
} ticks;

static void linear_ticks(double lo, double hi, ticks *t)
{
    double step = nice_step(hi - lo, 5);
    int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 10)
        dec = 10;
    t->n = 0;
    for (double k = ceil(lo / step - 1e-9); t->n < MAX_TICKS; k++) {
        double v = k * step;
        if (v > hi + step * 1e-9)
            break;
        if (fabs(v) < step * 1e-9)
            v = 0.0;
        t->v[t->n] = v;
        if (fabs(v) >= 1e7)
            snprintf(t->label[t->n], sizeof t->label[0], "%.3g", v);
        else
            snprintf(t->label[t->n], sizeof t->label[0], "%.*f", dec, v);
        t->n++;
    }
}

static void log_label(double v, char *buf, size_t len)
{
    double e = floor(log10(v) + 1e-9);
    if (e >= -3 && e <= 5)
        snprintf(buf, len, "%.*f", e < 0 ? (int)-e + (fabs(v / pow(10, e) - 1) > 1e-6 ? 1 : 0) : 0,
                 v);
    else
        snprintf(buf, len, "%.0fe%d", v / pow(10.0, e), (int)e);
}

/* Decades in [lo, hi]; with fewer than three, also 2x and 5x each decade. */
static void log_ticks(double lo, double hi, ticks *t)
{
    static const double k_mult[2][3] = {{1, 0, 0}, {1, 2, 5}};
    int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
    bool fine = e1 - e0 < 3;
    int step = e1 - e0 > 10 ? (e1 - e0 + 9) / 10 : 1;
    t->n = 0;
    for (int e = e0; e <= e1 && t->n < MAX_TICKS; e += step)
        for (int m = 0; m < 3 && t->n < MAX_TICKS; m++) {
            double mult = k_mult[fine][m];
            if (mult == 0)
                continue;
            double v = mult * pow(10.0, e);
            if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9))
                continue;
            t->v[t->n] = v;
            log_label(v, t->label[t->n], sizeof t->label[0]);
            t->n++;
        }
}

/* ---- layout ---------------------------------------------------------------------------- */

typedef struct layout {
    int scale;                     /* font scale */
    int px0, py0, px1, py1;        /* plot area, inclusive, in pixels */
    double x_lo, x_hi, y_lo, y_hi; /* axis ranges (x in log10 units when log_x) */
    ticks xt, yt;
} layout;

static bool usable_x(const tdm_plot *p, double x)
{
    return isfinite(x) && (!p->log_x || x > 0);
}

/* The data range of one axis over every usable point; false when there is none. */
static bool data_range(const tdm_plot *p, bool want_x, double *lo, double *hi)
{
    bool any = false;
    for (size_t s = 0; s < p->n_series; s++)
        for (size_t i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!usable_x(p, x) || !isfinite(y))
                continue;
            double v = want_x ? (p->log_x ? log10(x) : x) : y;
            if (!any || v < *lo)
                *lo = v;
            if (!any || v > *hi)
                *hi = v;
            any = true;
        }
    return any;
}

/* Axis range in axis units: fixed, or the data widened to whole tick steps. */
static void axis_range(const tdm_plot *p, bool is_x, double *lo, double *hi, ticks *t)
{
    bool fixed = is_x ? p->x_fixed : p->y_fixed;
    bool log_axis = is_x && p->log_x;
    if (fixed) {
        *lo = is_x ? p->x_lo : p->y_lo;
        *hi = is_x ? p->x_hi : p->y_hi;
        if (log_axis) {
            *lo = log10(*lo);
            *hi = log10(*hi);
        }
    } else if (!data_range(p, is_x, lo, hi)) {
        *lo = 0.0;
        *hi = 1.0;
    }
    if (!isfinite(*hi - *lo)) { /* data near the double limits: keep the span finite */
        *lo = fmax(*lo, -1e300);
        *hi = fmin(*hi, 1e300);
    }
    if (!(*hi > *lo)) { /* a single value: a unit (or one-decade) window around it */
        double d = log_axis ? 0.5 : (fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 0.5);
        *lo -= d;
        *hi += d;
    }
    if (log_axis) {
        if (!fixed) {
            double pad = (*hi - *lo) * 0.04;
            *lo -= pad;
            *hi += pad;
        }
        log_ticks(pow(10.0, *lo), pow(10.0, *hi), t);
        return;
    }
    if (!fixed) { /* 3% margin so points never sit on the frame, then whole steps */
        double margin = (*hi - *lo) * 0.03;
        *lo -= margin;
        *hi += margin;
        double step = nice_step(*hi - *lo, 5);
        *lo = floor(*lo / step + 1e-9) * step;
        *hi = ceil(*hi / step - 1e-9) * step;
    }
    linear_ticks(*lo, *hi, t);
}

static void compute_layout(const tdm_plot *p, layout *L)
{
    L->scale = (p->w >= 480 && p->h >= 320) ? 2 : 1;
    const int s = L->scale, ch = 9 * s, pad = 4 * s;
    axis_range(p, true, &L->x_lo, &L->x_hi, &L->xt);
    axis_range(p, false, &L->y_lo, &L->y_hi, &L->yt);
    int ytw = 0;
    for (int i = 0; i < L->yt.n; i++) {
        int w = tdm_plot_text_width(L->yt.label[i], s);
        if (w > ytw)
            ytw = w;
    }
    L->px0 = pad + (p->y_label ? ch + 2 * pad : 0) + ytw + pad + 3 * s;
    L->px1 = p->w - 1 - 6 * s;
    L->py0 = (p->title ? ch + 3 * pad : 4 * pad);
    L->py1 = p->h - 1 - (pad + ch + pad + 3 * s + (p->x_label ? ch + 2 * pad : 0));
    /* a last x tick label must not run past the right edge */
    if (L->xt.n > 0) {
        int half = tdm_plot_text_width(L->xt.label[L->xt.n - 1], s) / 2;
        if (L->px1 + half > p->w - 2)
            L->px1 = p->w - 2 - half;
    }
}

static double map_x(const layout *L, double x)
{
    return L->px0 + (x - L->x_lo) / (L->x_hi - L->x_lo) * (L->px1 - L->px0);
}

static double map_y(const layout *L, double y)
{
    return L->py1 - (y - L->y_lo) / (L->y_hi - L->y_lo) * (L->py1 - L->py0);
}

/* Clips the segment to [x0,x1]x[y0,y1] (Liang-Barsky); false when nothing is left. */
static bool clip(double *ax, double *ay, double *bx, double *by, double x0, double y0, double x1,
                 double y1)
{
    double t0 = 0.0, t1 = 1.0, dx = *bx - *ax, dy = *by - *ay;
    const double pv[4] = {-dx, dx, -dy, dy};
    const double qv[4] = {*ax - x0, x1 - *ax, *ay - y0, y1 - *ay};
    for (int k = 0; k < 4; k++) {
        if (pv[k] == 0.0) {
            if (qv[k] < 0.0)
                return false;
            continue;
        }
        double r = qv[k] / pv[k];
        if (pv[k] < 0.0) {
            if (r > t1)
                return false;
            if (r > t0)
                t0 = r;
        } else {
            if (r < t0)
                return false;
            if (r < t1)
                t1 = r;
        }
    }
    double nax = *ax + t0 * dx, nay = *ay + t0 * dy;
    *bx = *ax + t1 * dx;
    *by = *ay + t1 * dy;
    *ax = nax;
    *ay = nay;
    return true;
}

/* ---- public ---------------------------------------------------------------------------- */

tdm_status tdm_plot_create(int width, int height, tdm_plot **out, tdm_err *err)
{
    *out = NULL;
    if (width < TDM_PLOT_MIN_SIZE || width > TDM_PLOT_MAX_SIZE || height < TDM_PLOT_MIN_SIZE ||
        height > TDM_PLOT_MAX_SIZE)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "plot size %dx%d: each side must be %d..%d",
                        width, height, TDM_PLOT_MIN_SIZE, TDM_PLOT_MAX_SIZE);
    tdm_plot *p = calloc(1, sizeof *p);
    if (p == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "plot: out of memory");
    p->w = width;
    p->h = height;
    *out = p;
    return TDM_OK;
}

void tdm_plot_free(tdm_plot *p)
{
    if (p == NULL)
        return;
    for (size_t s = 0; s < p->n_series; s++) {
        free(p->series[s].name);
        free(p->series[s].x);
        free(p->series[s].y);
    }
    free(p->series);
    free(p->title);
    free(p->x_label);
    free(p->y_label);
    free(p);
}

/* Replaces *slot with a copy of s cut to TDM_PLOT_MAX_TEXT bytes (NULL or "" clears). */
static tdm_status set_text(char **slot, const char *s, tdm_err *err)
{
    char *copy = NULL;
    if (s != NULL && *s != '\0') {
        size_t n = strlen(s);
        copy = tdm_strndup(s, n < TDM_PLOT_MAX_TEXT ? n : TDM_PLOT_MAX_TEXT);
        if (copy == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "plot: out of memory");
    }
    free(*slot);
    *slot = copy;
    return TDM_OK;
}

tdm_status tdm_plot_title(tdm_plot *p, const char *title, tdm_err *err)
{
    return set_text(&p->title, title, err);
}

tdm_status tdm_plot_labels(tdm_plot *p, const char *x_label, const char *y_label, tdm_err *err)
{
    tdm_status st = set_text(&p->x_label, x_label, err);
    return st != TDM_OK ? st : set_text(&p->y_label, y_label, err);
}

void tdm_plot_log_x(tdm_plot *p, bool on)
{
    p->log_x = on;
}

static tdm_status check_range(const char *axis, double lo, double hi, bool log_axis, tdm_err *err)
{
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "plot %s range [%g, %g]: want finite lo < hi",
                        axis, lo, hi);
    if (log_axis && !(lo > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "plot %s range [%g, %g]: a log axis needs lo > 0",
                        axis, lo, hi);
    return TDM_OK;
}

tdm_status tdm_plot_x_range(tdm_plot *p, double lo, double hi, tdm_err *err)
{
    tdm_status st = check_range("x", lo, hi, p->log_x, err);
    if (st != TDM_OK)
        return st;
    p->x_fixed = true;
    p->x_lo = lo;
    p->x_hi = hi;
    return TDM_OK;
}

tdm_status tdm_plot_y_range(tdm_plot *p, double lo, double hi, tdm_err *err)
{
    tdm_status st = check_range("y", lo, hi, false, err);
    if (st != TDM_OK)
        return st;
    p->y_fixed = true;
    p->y_lo = lo;
    p->y_hi = hi;
    return TDM_OK;
}

tdm_status tdm_plot_series(tdm_plot *p, const char *name, const double *x, const double *y,
                           size_t n, tdm_plot_style style, tdm_err *err)
{
    if (style < TDM_PLOT_LINE || style > TDM_PLOT_LINE_POINTS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "plot series '%s': unknown style %d",
                        name ? name : "", (int)style);
    if (n > 0 && (x == NULL || y == NULL))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "plot series '%s': %zu points but no data",
                        name ? name : "", n);
    size_t bytes;
    if (tdm_mul_overflow(n, sizeof(double), &bytes))
        return tdm_errf(err, TDM_ERR_NOMEM, "plot series '%s': %zu points is too many",
                        name ? name : "", n);
    plot_series s = {.n = n, .style = style};
    s.x = malloc(bytes ? bytes : 1);
    s.y = malloc(bytes ? bytes : 1);
    if (name != NULL && *name != '\0') {
        size_t name_len = strlen(name);
        s.name = tdm_strndup(name, name_len < TDM_PLOT_MAX_TEXT ? name_len : TDM_PLOT_MAX_TEXT);
    }
    plot_series *grown = realloc(p->series, (p->n_series + 1) * sizeof *grown);
    if (s.x == NULL || s.y == NULL || (name != NULL && *name != '\0' && s.name == NULL) ||
        grown == NULL) {
        free(s.x);
        free(s.y);
        free(s.name);
        if (grown != NULL)
            p->series = grown;
        return tdm_errf(err, TDM_ERR_NOMEM, "plot series: out of memory");
    }
    if (n > 0) {
        memcpy(s.x, x, bytes);
        memcpy(s.y, y, bytes);
    }
    p->series = grown;
    p->series[p->n_series++] = s;
    return TDM_OK;
}

static void draw_axes(const tdm_plot *p, const layout *L, canvas *c)
{
    const int s = L->scale, ch = 9 * s, pad = 4 * s;
    /* grid and ticks */
    for (int i = 0; i < L->xt.n; i++) {
        double v = p->log_x ? log10(L->xt.v[i]) : L->xt.v[i];
        int x = (int)lround(map_x(L, v));
        line(c, x, L->py0 + 1, x, L->py1 - 1, 0, k_grid);
        line(c, x, L->py1, x, L->py1 + 3 * s, 0, k_frame);
        int tw = tdm_plot_text_width(L->xt.label[i], s);
        text(c, x - tw / 2, L->py1 + 3 * s + pad, L->xt.label[i], s, false, k_black);
    }
    for (int i = 0; i < L->yt.n; i++) {
        int y = (int)lround(map_y(L, L->yt.v[i]));
        line(c, L->px0 + 1, y, L->px1 - 1, y, 0, k_grid);
        line(c, L->px0 - 3 * s, y, L->px0, y, 0, k_frame);
        int tw = tdm_plot_text_width(L->yt.label[i], s);
        text(c, L->px0 - 3 * s - pad - tw, y - ch / 2, L->yt.label[i], s, false, k_black);
    }
    /* frame */
    line(c, L->px0, L->py0, L->px1, L->py0, 0, k_frame);
    line(c, L->px0, L->py1, L->px1, L->py1, 0, k_frame);
    line(c, L->px0, L->py0, L->px0, L->py1, 0, k_frame);
    line(c, L->px1, L->py0, L->px1, L->py1, 0, k_frame);
    /* texts */
    if (p->title) { /* a title too wide for the chart is drawn at the smaller scale */
        int ts = s > 1 && tdm_plot_text_width(p->title, s) > p->w - 2 * pad ? 1 : s;
        int tw = tdm_plot_text_width(p->title, ts), tx = (L->px0 + L->px1) / 2 - tw / 2;
        if (tx + tw > p->w - pad)
            tx = p->w - pad - tw;
        text(c, tx < pad ? pad : tx, 2 * pad, p->title, ts, false, k_black);
    }
    if (p->x_label) {
        int tw = tdm_plot_text_width(p->x_label, s);
        text(c, (L->px0 + L->px1) / 2 - tw / 2, p->h - 1 - pad - ch, p->x_label, s, false, k_black);
    }
    if (p->y_label) {
        int tw = tdm_plot_text_width(p->y_label, s);
        text(c, pad, (L->py0 + L->py1) / 2 + tw / 2, p->y_label, s, true, k_black);
    }
}

static void draw_series(const tdm_plot *p, const layout *L, canvas *c, size_t si)
{
    const plot_series *sr = &p->series[si];
    const uint8_t *rgb = k_palette[si % N_PALETTE];
    const int s = L->scale;
    bool have_prev = false;
    double prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < sr->n; i++) {
        if (!usable_x(p, sr->x[i]) || !isfinite(sr->y[i])) {
            have_prev = false;
            continue;
        }
        double x = map_x(L, p->log_x ? log10(sr->x[i]) : sr->x[i]), y = map_y(L, sr->y[i]);
        if (!isfinite(x) || !isfinite(y)) { /* beyond what the axes can place */
            have_prev = false;
            continue;
        }
        if ((sr->style & TDM_PLOT_LINE) && have_prev) {
            double ax = prev_x, ay = prev_y, bx = x, by = y;
            if (clip(&ax, &ay, &bx, &by, L->px0, L->py0, L->px1, L->py1))
                line(c, (int)lround(ax), (int)lround(ay), (int)lround(bx), (int)lround(by), 1, rgb);
        }
        if ((sr->style & TDM_PLOT_POINTS) && x >= L->px0 && x <= L->px1 && y >= L->py0 &&
            y <= L->py1) {
            int r = s + 1, xi = (int)lround(x), yi = (int)lround(y);
            fill(c, xi - r, yi - r, xi + r, yi + r, rgb);
        }
        have_prev = true;
        prev_x = x;
        prev_y = y;
    }
}

static void draw_legend(const tdm_plot *p, const layout *L, canvas *c)
{
    const int s = L->scale, ch = 9 * s, pad = 4 * s, sample = 16 * s, row = ch + 2;
    int n = 0, tw = 0;
    for (size_t i = 0; i < p->n_series; i++)
        if (p->series[i].name) {
            n++;
            int w = tdm_plot_text_width(p->series[i].name, s);
            if (w > tw)
                tw = w;
        }
    if (n == 0)
        return;
    const int bw = pad + sample + pad + tw + pad, bh = pad + n * row - 2 + pad;
    /* corners: top-right, bottom-right, top-left, bottom-left; pick the emptiest */
    int best = 0;
    long best_count = -1;
    for (int k = 0; k < 4; k++) {
        int x0 = (k < 2) ? L->px1 - 2 * s - bw : L->px0 + 2 * s + 1;
        int y0 = (k % 2 == 0) ? L->py0 + 2 * s + 1 : L->py1 - 2 * s - bh;
        long count = 0;
        for (size_t si = 0; si < p->n_series; si++)
            for (size_t i = 0; i < p->series[si].n; i++) {
                double x = p->series[si].x[i], y = p->series[si].y[i];
                if (!usable_x(p, x) || !isfinite(y))
                    continue;
                double mx = map_x(L, p->log_x ? log10(x) : x), my = map_y(L, y);
                count +=
                    mx >= x0 - pad && mx <= x0 + bw + pad && my >= y0 - pad && my <= y0 + bh + pad;
            }
        if (best_count < 0 || count < best_count) {
            best_count = count;
            best = k;
        }
    }
    int x0 = (best < 2) ? L->px1 - 2 * s - bw : L->px0 + 2 * s + 1;
    int y0 = (best % 2 == 0) ? L->py0 + 2 * s + 1 : L->py1 - 2 * s - bh;
    static const uint8_t k_white[3] = {255, 255, 255};
    fill(c, x0, y0, x0 + bw, y0 + bh, k_white);
    line(c, x0, y0, x0 + bw, y0, 0, k_grid);
    line(c, x0, y0 + bh, x0 + bw, y0 + bh, 0, k_grid);
    line(c, x0, y0, x0, y0 + bh, 0, k_grid);
    line(c, x0 + bw, y0, x0 + bw, y0 + bh, 0, k_grid);
    int y = y0 + pad;
    for (size_t i = 0; i < p->n_series; i++) {
        if (!p->series[i].name)
            continue;
        const uint8_t *rgb = k_palette[i % N_PALETTE];
        int mid = y + 7 * s / 2;
        if (p->series[i].style & TDM_PLOT_LINE)
            line(c, x0 + pad, mid, x0 + pad + sample, mid, 1, rgb);
        if (p->series[i].style & TDM_PLOT_POINTS)
            fill(c, x0 + pad + sample / 2 - s - 1, mid - s - 1, x0 + pad + sample / 2 + s + 1,
                 mid + s + 1, rgb);
        text(c, x0 + pad + sample + pad, y, p->series[i].name, s, false, k_black);
        y += row;
    }
}

tdm_status tdm_plot_render(const tdm_plot *p, uint8_t **rgb, int *width, int *height, tdm_err *err)
{
    *rgb = NULL;
    size_t bytes = (size_t)p->w * (size_t)p->h * 3; /* sizes are capped by tdm_plot_create */
    canvas c = {.px = malloc(bytes), .w = p->w, .h = p->h};
    if (c.px == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "plot: out of memory for %dx%d", p->w, p->h);
    memset(c.px, 255, bytes);
    layout L;
    compute_layout(p, &L);
    c.cx0 = 0;
    c.cy0 = 0;
    c.cx1 = p->w - 1;
    c.cy1 = p->h - 1;
    draw_axes(p, &L, &c);
    c.cx0 = L.px0 + 1; /* series stay inside the frame */
    c.cy0 = L.py0 + 1;
    c.cx1 = L.px1 - 1;
    c.cy1 = L.py1 - 1;
    for (size_t i = 0; i < p->n_series; i++)
        draw_series(p, &L, &c, i);
    draw_legend(p, &L, &c);
    *rgb = c.px;
    *width = p->w;
    *height = p->h;
    return TDM_OK;
}

tdm_status tdm_plot_to_pixel(const tdm_plot *p, double x, double y, double *px, double *py)
{
    layout L;
    compute_layout(p, &L);
    if (p->log_x) {
        if (!(x > 0))
            return TDM_ERR_INVALID_ARG;
        x = log10(x);
    }
    *px = map_x(&L, x);
    *py = map_y(&L, y);
    return TDM_OK;
}

/* ---- PNG ------------------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes one chunk (length, type, data, CRC of type+data) at *at and advances it. */
static void chunk(uint8_t **at, const char type[4], const uint8_t *data, uint32_t len)
{
    uint8_t *p = *at;
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len > 0)
        memcpy(p + 8, data, len);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, 4 + len);
    put_be32(p + 8 + len, (uint32_t)crc);
    *at = p + 12 + len;
}

tdm_status tdm_png_encode(const uint8_t *rgb, int width, int height, uint8_t **png, size_t *len,
                          tdm_err *err)
{
    *png = NULL;
    *len = 0;
    if (width < 1 || height < 1 || width > TDM_PLOT_MAX_SIZE || height > TDM_PLOT_MAX_SIZE)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "png: image size %dx%d is not 1..%d", width,
                        height, TDM_PLOT_MAX_SIZE);
    const size_t stride = (size_t)width * 3 + 1, raw_len = stride * (size_t)height;
    uint8_t *raw = malloc(raw_len);
    uLongf zlen = compressBound((uLong)raw_len);
    uint8_t *z = malloc(zlen);
    if (raw == NULL || z == NULL) {
        free(raw);
        free(z);
        return tdm_errf(err, TDM_ERR_NOMEM, "png: out of memory for %dx%d", width, height);
    }
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * stride] = 0; /* filter: none */
        memcpy(raw + (size_t)y * stride + 1, rgb + (size_t)y * (size_t)width * 3,
               (size_t)width * 3);
    }
    int zr = compress2(z, &zlen, raw, (uLong)raw_len, 9);
    free(raw);
    if (zr != Z_OK) {
        free(z);
        return tdm_errf(err, TDM_ERR_INTERNAL, "png: zlib compress2 failed (%d)", zr);
    }
    size_t total = 8 + (12 + 13) + (12 + (size_t)zlen) + 12;
    uint8_t *out = malloc(total);
    if (out == NULL) {
        free(z);
        return tdm_errf(err, TDM_ERR_NOMEM, "png: out of memory");
    }
    static const uint8_t k_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(out, k_sig, 8);
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* compression: deflate */
    ihdr[11] = 0; /* filter method 0 */
    ihdr[12] = 0; /* no interlace */
    uint8_t *at = out + 8;
    chunk(&at, "IHDR", ihdr, 13);
    chunk(&at, "IDAT", z, (uint32_t)zlen);
    chunk(&at, "IEND", NULL, 0);
    free(z);
    *png = out;
    *len = total;
    return TDM_OK;
}

tdm_status tdm_plot_write_png(const tdm_plot *p, const char *path, tdm_err *err)
{
    uint8_t *rgb = NULL, *png = NULL;
    int w, h;
    size_t len;
    tdm_status st = tdm_plot_render(p, &rgb, &w, &h, err);
    if (st == TDM_OK)
        st = tdm_png_encode(rgb, w, h, &png, &len, err);
    free(rgb);
    if (st != TDM_OK)
        return st;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        free(png);
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot create the file", path);
    }
    size_t wrote = fwrite(png, 1, len, f);
    int closed = fclose(f);
    free(png);
    if (wrote != len || closed != 0)
        return tdm_errf(err, TDM_ERR_IO, "%s: write failed", path);
    return TDM_OK;
}
