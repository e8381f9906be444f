/* CSV reader: numeric tables into float32 [rows, columns], optionally with one
 * column taken out as int64 labels.
 *
 * Rules: one record per line ('\n' or "\r\n"); blank lines are skipped; fields are
 * separated by one delimiter byte (',' unless told); spaces around a field and one
 * pair of double quotes around it are ignored; every row has the same number of
 * fields. The first row is a header when told so, or (auto) when one of its fields
 * is not a number. Two passes over the text: the first counts rows and checks
 * their widths, so the only allocation is the final one.
 */
#include "frontends/data_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FIELD 128 /* longest number accepted, in characters */

typedef struct Line {
    const char *p, *end; /* without the line break */
    int64_t lineno;      /* 1-based */
} Line;

/* Next non-blank line from *pos; 0 at the end. */
static int next_line(const char **pos, const char *end, int64_t *lineno, Line *l)
{
    while (*pos < end) {
        const char *s = *pos;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        *pos = nl ? nl + 1 : end;
        ++*lineno;
        if (e > s && e[-1] == '\r')
            e--;
        const char *t = s;
        while (t < e && (*t == ' ' || *t == '\t' || *t == '\r'))
            t++;
        if (t == e)
            continue; /* blank */
        l->p = s;
        l->end = e;
        l->lineno = *lineno;
        return 1;
    }
    return 0;
}

#define MAX_COLUMNS 1000000

/* Fields on a line, capped at MAX_COLUMNS + 1 (more is refused). */
static int count_fields(const Line *l, char delim)
{
    int n = 1;
    for (const char *p = l->p; p < l->end && n <= MAX_COLUMNS; p++)
        if (*p == delim)
            n++;
    return n;
}

/* Field k bounds, trimmed of blanks and one pair of double quotes. */
static void field_at(const char **p, const char *end, char delim, const char **fs, const char **fe)
{
    const char *s = *p, *e = s;
    while (e < end && *e != delim)
        e++;
    *p = e < end ? e + 1 : end;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        s++;
        e--;
        while (s < e && *s == ' ')
            s++;
        while (e > s && e[-1] == ' ')
            e--;
    }
    *fs = s;
    *fe = e;
}

/* 0 ok, -1 empty, -2 not a number, -3 too long, -4 out of range */
static int parse_number(const char *s, const char *e, double *out)
{
    if (s == e)
        return -1;
    if (e - s >= MAX_FIELD)
        return -3;
    char buf[MAX_FIELD];
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = 0;
    /* strtod also takes hex floats and "infinity"; keep to decimal numbers, inf and nan */
    for (const char *c = buf; *c; c++)
        if (*c == 'x' || *c == 'X')
            return -2;
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (endp == buf || *endp)
        return -2;
    if (errno == ERANGE && isinf(v))
        return -4;
    *out = v;
    return 0;
}

static int row_is_numeric(const Line *l, char delim)
{
    const char *p = l->p;
    int n = count_fields(l, delim);
    for (int i = 0; i < n; i++) {
        const char *s, *e;
        field_at(&p, l->end, delim, &s, &e);
        double v;
        int r = parse_number(s, e, &v);
        if (r == -2 || r == -3)
            return 0;
    }
    return 1;
}

static int slurp(const char *path, char **buf, size_t *len, Diag *d)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return data_err(d, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return data_err(d, path, "not a regular file");
    }
    if ((uint64_t)st.st_size > DATA_MAX_BYTES) {
        fclose(f);
        return data_err(d, path, "the file is %lld bytes, larger than the limit of %zu", (long long)st.st_size, DATA_MAX_BYTES);
    }
    size_t n = (size_t)st.st_size;
    char *p = malloc(n + 1);
    if (!p) {
        fclose(f);
        return data_err(d, path, "out of memory reading %zu bytes", n);
    }
    if (n && fread(p, 1, n, f) != n) {
        free(p);
        fclose(f);
        return data_err(d, path, "cannot read: %s", "file shrank while reading");
    }
    fclose(f);
    p[n] = 0;
    *buf = p;
    *len = n;
    return 0;
}

int data_read_csv(const char *path, const CsvOptions *o, Dataset *x, Dataset *labels, Diag *d)
{
    dataset_init(x);
    if (labels)
        dataset_init(labels);
    CsvOptions def = {0};
    if (!o)
        o = &def;
    char delim = o->delimiter ? o->delimiter : ',';
    if (delim == '"' || delim == '\n' || delim == '\r' || delim == '.' || delim == '-' || delim == '+' ||
        (delim >= '0' && delim <= '9'))
        return data_err(d, path, "'%c' cannot be a CSV delimiter", delim);
    if (o->label && !labels)
        return data_err(d, path, "a label column is asked for but there is nowhere to put the labels");
    char *text;
    size_t len;
    if (slurp(path, &text, &len, d))
        return -1;
    int rc = -1;
    const char *end = text + len;
    if (memchr(text, 0, len)) {
        data_err(d, path, "not a CSV file: it contains NUL bytes");
        goto out;
    }
    const char *pos = text;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos += 3; /* UTF-8 byte order mark */

    /* pass 1: header, width, rows */
    int64_t lineno = 0;
    Line first;
    if (!next_line(&pos, end, &lineno, &first)) {
        data_err(d, path, "empty CSV file: no rows");
        goto out;
    }
    int ncols = count_fields(&first, delim);
    if (ncols > MAX_COLUMNS) {
        data_err(d, path, "line %" PRId64 " has more than %d fields", first.lineno, MAX_COLUMNS);
        goto out;
    }
    int has_header;
    if (o->header == CSV_HEADER_YES)
        has_header = 1;
    else if (o->header == CSV_HEADER_NO)
        has_header = 0;
    else
        has_header = !row_is_numeric(&first, delim);
    const char *data_start = has_header ? pos : first.p;
    int64_t data_lineno0 = has_header ? lineno : first.lineno - 1;

    /* label column */
    int label_col = -1;
    if (o->label) {
        const char *lab = o->label;
        char *endp;
        long v;
        errno = 0;
        if (strcmp(lab, "last") == 0)
            label_col = ncols - 1;
        else if (lab[0] >= '0' && lab[0] <= '9' && (v = strtol(lab, &endp, 10), !*endp && !errno)) {
            if (v >= ncols) {
                data_err(d, path, "label column %ld does not exist: the rows have %d columns", v, ncols);
                goto out;
            }
            label_col = (int)v;
        } else if (has_header) {
            const char *p = first.p;
            for (int i = 0; i < ncols; i++) {
                const char *s, *e;
                field_at(&p, first.end, delim, &s, &e);
                if ((size_t)(e - s) == strlen(lab) && memcmp(s, lab, (size_t)(e - s)) == 0) {
                    label_col = i;
                    break;
                }
            }
            if (label_col < 0) {
                data_err(d, path, "no column is named '%s' in the header", lab);
                goto out;
            }
        } else {
            data_err(d, path, "label column '%s': the file has no header row, so give a column number or 'last'", lab);
            goto out;
        }
        if (ncols < 2) {
            data_err(d, path, "the label column is the only column: no features are left");
            goto out;
        }
    }

    int64_t rows = 0;
    Line l;
    const char *p2 = data_start;
    int64_t ln = data_lineno0;
    while (next_line(&p2, end, &ln, &l)) {
        int n = count_fields(&l, delim);
        if (n != ncols) {
            data_err(d, path, "line %" PRId64 " has %d fields, the %s has %d", l.lineno, n,
                     has_header ? "header" : "first row", ncols);
            goto out;
        }
        rows++;
    }
    if (rows == 0) {
        data_err(d, path, "no data rows after the header");
        goto out;
    }
    int nfeat = ncols - (label_col >= 0);
    int64_t xd[2] = {rows, nfeat};
    if (dataset_alloc(x, DT_FLOAT, 2, xd, path, d))
        goto out;
    if (label_col >= 0 && dataset_alloc(labels, DT_INT64, 1, xd, path, d))
        goto out;

    /* pass 2: numbers */
    float *xv = x->data;
    int64_t *lv = label_col >= 0 ? labels->data : NULL;
    p2 = data_start;
    ln = data_lineno0;
    int64_t r = 0;
    while (next_line(&p2, end, &ln, &l)) {
        const char *p = l.p;
        int k = 0;
        for (int c = 0; c < ncols; c++) {
            const char *s, *e;
            field_at(&p, l.end, delim, &s, &e);
            double v;
            int pr = parse_number(s, e, &v);
            if (pr) {
                if (pr == -1)
                    data_err(d, path, "line %" PRId64 ", column %d: empty field", l.lineno, c + 1);
                else if (pr == -4)
                    data_err(d, path, "line %" PRId64 ", column %d: %.*s is out of the range of float32", l.lineno,
                             c + 1, (int)(e - s > 40 ? 40 : e - s), s);
                else
                    data_err(d, path, "line %" PRId64 ", column %d: '%.*s' is not a number", l.lineno, c + 1,
                             (int)(e - s > 40 ? 40 : e - s), s);
                goto fail;
            }
            if (c == label_col) {
                if (!(v == floor(v)) || v < -9.2e18 || v > 9.2e18) {
                    data_err(d, path, "line %" PRId64 ", column %d: label '%.*s' is not a whole number", l.lineno, c + 1,
                             (int)(e - s > 40 ? 40 : e - s), s);
                    goto fail;
                }
                lv[r] = (int64_t)v;
                continue;
            }
            if (isfinite(v) && fabs(v) > 3.4028234663852886e38) {
                data_err(d, path, "line %" PRId64 ", column %d: %.*s is out of the range of float32", l.lineno, c + 1,
                         (int)(e - s > 40 ? 40 : e - s), s);
                goto fail;
            }
            xv[r * nfeat + k++] = (float)v;
        }
        r++;
    }
    rc = 0;
    goto out;
fail:
    dataset_free(x);
    if (labels)
        dataset_free(labels);
out:
    if (rc) {
        dataset_free(x);
        if (labels)
            dataset_free(labels);
    }
    free(text);
    return rc;
}
