/* Lexer for the ONNX textual syntax (onnx/defs/parser.cc, docs/Syntax.md).
 * Generated into C by re2c at build time. The text must end with a NUL sentinel at
 * lx->lim; NUL bytes before lim are ordinary bytes (bounds are checked). */
#include "frontends/onnx_text.h"

/* A string literal: '"', then any bytes where '\' escapes the next one, then '"'.
 * Raw newlines are allowed inside, as in ONNX. */
static void lex_string(Lexer *lx, Token *t)
{
    const char *p = t->start + 1;
    while (p < lx->lim && *p != '"') {
        if (*p == '\\') {
            p++;
            if (p >= lx->lim)
                break;
        }
        p++;
    }
    if (p >= lx->lim) {
        t->kind = TK_BAD_STRING;
        lx->cur = lx->lim;
        t->len = (size_t)(lx->lim - t->start);
        return;
    }
    lx->cur = p + 1;
    t->kind = TK_STRING;
    t->len = (size_t)(lx->cur - t->start);
}

void onnx_lex(Lexer *lx, Token *t)
{
    const unsigned char *cur = (const unsigned char *)lx->cur;
    const unsigned char *lim = (const unsigned char *)lx->lim;
    const unsigned char *mar = cur;
    for (;;) {
        const unsigned char *tok = cur;
        t->start = (const char *)tok;
#define DONE(k) do { t->kind = (k); t->len = (size_t)(cur - tok); lx->cur = (const char *)cur; return; } while (0)
    /*!re2c
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = cur;
        re2c:define:YYMARKER = mar;
        re2c:define:YYLIMIT = lim;
        re2c:yyfill:enable = 0;
        re2c:eof = 0;

        digits = [0-9]+;
        exp    = [eE] [+-]? digits;

        $                            { DONE(TK_EOF); }
        [ \t\r\n\v\f]+               { continue; }
        "#" [^\n]*                   { continue; }
        [a-zA-Z_] [a-zA-Z0-9_]*      { DONE(TK_IDENT); }
        "-"? digits                  { DONE(TK_INT); }
        "-"? digits "." [0-9]* exp?  { DONE(TK_FLOAT); }
        "-"? digits exp              { DONE(TK_FLOAT); }
        "=>"                         { DONE(TK_ARROW); }
        ["]                          { lex_string(lx, t); return; }
        [()[\]{}<>,:=.?@-]           { DONE(TK_PUNCT); }
        *                            { DONE(TK_BAD_CHAR); }
    */
#undef DONE
    }
}
