/* kd_board_write for the host build of run_model.c: standard output. */
#include <stdio.h>

void kd_board_write(const char *s);

void kd_board_write(const char *s)
{
    fputs(s, stdout);
}
