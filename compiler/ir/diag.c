/* Diagnostics: every error is one line naming the file, the node and its operator. */
#include "compiler/ir/ir.h"

#include <string.h>

void diag_init(Diag *d, const char *file)
{
    memset(d, 0, sizeof *d);
    d->file = file;
}

static size_t prefix(const Diag *d, const Node *n, char *buf, size_t cap)
{
    size_t len = 0;
    if (d->file)
        len += (size_t)snprintf(buf + len, cap - len, "%s: ", d->file);
    if (n && len < cap) {
        if (n->name && n->name[0])
            len += (size_t)snprintf(buf + len, cap - len, "node '%s' (%s): ", n->name, n->op_type ? n->op_type : "?");
        else
            len += (size_t)snprintf(buf + len, cap - len, "unnamed node (%s): ", n->op_type ? n->op_type : "?");
    }
    return len < cap ? len : cap - 1;
}

int diag_verror(Diag *d, const Node *n, const char *fmt, va_list ap)
{
    d->errors++;
    if (d->errors > 1)
        return -1; /* the first error is the one that explains */
    size_t len = prefix(d, n, d->msg, sizeof d->msg);
    vsnprintf(d->msg + len, sizeof d->msg - len, fmt, ap);
    /* keep it on one line */
    for (char *p = d->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -1;
}

int diag_error(Diag *d, const Node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, n, fmt, ap);
    va_end(ap);
    return -1;
}

int diag_unsupported(Diag *d, const Node *n, const char *fmt, ...)
{
    if (d->errors == 0)
        d->unsupported = 1;
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, n, fmt, ap);
    va_end(ap);
    return -1;
}

void diag_warn(Diag *d, const Node *n, const char *fmt, ...)
{
    d->warnings++;
    if (d->quiet_warnings)
        return;
    char buf[1024];
    size_t len = prefix(d, n, buf, sizeof buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, sizeof buf - len, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kdcc: warning: %s\n", buf);
}

void diag_print(const Diag *d, FILE *f)
{
    if (d->errors)
        fprintf(f, "kdcc: error: %s\n", d->msg[0] ? d->msg : "unknown error");
}
