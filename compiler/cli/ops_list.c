/* kdcc ops: the operators kdcc compiles, straight from the operator table
 * (compiler/ops), so the list cannot drift from the code. docs/OPERATORS.md is
 * generated from `kdcc ops --tsv` (tests/docs/operators.sh). */
#include "compiler/cli/cli.h"
#include "compiler/ops/ops.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_TEXT, FMT_MARKDOWN, FMT_TSV };

static const char *dom_of(const OpDef *o)
{
    return o->domain && o->domain[0] ? o->domain : "ai.onnx";
}

/* default domain first, then the others by name; by operator name within a domain */
static int op_cmp(const void *pa, const void *pb)
{
    const OpDef *a = *(const OpDef *const *)pa, *b = *(const OpDef *const *)pb;
    int da = a->domain && a->domain[0], db = b->domain && b->domain[0];
    if (da != db)
        return da - db;
    int c = strcmp(dom_of(a), dom_of(b));
    return c ? c : strcmp(a->name, b->name);
}

static const char *count_range(char *buf, size_t n, int lo, int hi)
{
    if (hi < 0)
        snprintf(buf, n, "%d+", lo);
    else if (lo == hi)
        snprintf(buf, n, "%d", lo);
    else
        snprintf(buf, n, "%d-%d", lo, hi);
    return buf;
}

/* a table cell: '|' escaped, no newlines */
static void md_cell(const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", stdout);
        else if (*s == '\n' || *s == '\t')
            putchar(' ');
        else
            putchar(*s);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kdcc ops [--markdown | --tsv] [--internal]\n"
            "\n"
            "Lists the operators kdcc compiles, from its operator table: domain, name, the first\n"
            "opset version handled, input and output counts, and whether the operator is folded\n"
            "at compile time when its inputs are constant (fold), has a gradient rule so a\n"
            "student can train through it (grad), and can be a view that moves no data (view).\n"
            "\n"
            "      --markdown          a Markdown table\n"
            "      --tsv               tab-separated, one header line (for scripts)\n"
            "      --internal          also the operators of domain kdcc that training graphs use\n"
            "                          (gradients, losses, optimizer updates)\n"
            "  -h, --help              this text\n");
}

int cmd_ops(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"markdown", no_argument, 0, 'm'},
        {"tsv", no_argument, 0, 't'},
        {"internal", no_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int fmt = FMT_TEXT, internal = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': fmt = FMT_MARKDOWN; break;
        case 't': fmt = FMT_TSV; break;
        case 'i': internal = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "kdcc: error: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    int n = 0;
    while (op_at(n))
        n++;
    const OpDef **ops = malloc(((size_t)n + 1) * sizeof *ops);
    if (!ops) {
        fprintf(stderr, "kdcc: error: out of memory\n");
        return 1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        const OpDef *o = op_at(i);
        if (!internal && o->domain && strcmp(o->domain, "kdcc") == 0)
            continue;
        ops[k++] = o;
    }
    qsort(ops, (size_t)k, sizeof *ops, op_cmp);
    int wname = 8, wdom = 6;
    for (int i = 0; i < k; i++) {
        if ((int)strlen(ops[i]->name) > wname)
            wname = (int)strlen(ops[i]->name);
        if ((int)strlen(dom_of(ops[i])) > wdom)
            wdom = (int)strlen(dom_of(ops[i]));
    }
    if (fmt == FMT_TSV)
        printf("domain\toperator\tsince\tinputs\toutputs\tfold\tgrad\tview\tsummary\n");
    else if (fmt == FMT_MARKDOWN)
        printf("| domain | operator | since opset | inputs | outputs | fold | grad | view | what it does |\n"
               "| --- | --- | ---: | :---: | :---: | :---: | :---: | :---: | --- |\n");
    else
        printf("%-*s  %-*s  %5s  %6s  %7s  %4s  %4s  %4s  %s\n", wdom, "domain", wname, "operator", "since", "inputs",
               "outputs", "fold", "grad", "view", "summary");
    int ngrad = 0;
    for (int i = 0; i < k; i++) {
        const OpDef *o = ops[i];
        char in[32], out[32];
        count_range(in, sizeof in, o->min_inputs, o->max_inputs);
        count_range(out, sizeof out, o->min_outputs, o->max_outputs);
        const char *yes = "yes", *no = fmt == FMT_TEXT ? "-" : fmt == FMT_TSV ? "no" : "";
        ngrad += o->grad != NULL;
        if (fmt == FMT_TSV) {
            printf("%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t", dom_of(o), o->name, o->since, in, out, o->fold ? yes : no,
                   o->grad ? yes : no, o->view ? yes : no);
            for (const char *s = o->summary ? o->summary : ""; *s; s++)
                putchar(*s == '\t' || *s == '\n' ? ' ' : *s);
            putchar('\n');
        } else if (fmt == FMT_MARKDOWN) {
            printf("| %s | %s | %d | %s | %s | %s | %s | %s | ", dom_of(o), o->name, o->since, in, out, o->fold ? yes : no,
                   o->grad ? yes : no, o->view ? yes : no);
            md_cell(o->summary);
            printf(" |\n");
        } else {
            printf("%-*s  %-*s  %5d  %6s  %7s  %4s  %4s  %4s  %s\n", wdom, dom_of(o), wname, o->name, o->since, in, out,
                   o->fold ? yes : no, o->grad ? yes : no, o->view ? yes : no, o->summary ? o->summary : "");
        }
    }
    if (fmt == FMT_TEXT)
        printf("\n%d operators, %d with a gradient rule\n", k, ngrad);
    free(ops);
    return 0;
}
