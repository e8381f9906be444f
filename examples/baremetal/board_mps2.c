/* Output and exit for Arm's MPS2 boards (and QEMU's mps2-an385/an386/an500):
 *
 * - kd_board_write: by semihosting (SYS_WRITE0, through the debugger or QEMU's
 *   -semihosting-config enable=on), or, built with -DBOARD_UART, on the board's
 *   CMSDK APB UART0 at 0x40004000 (QEMU: -serial stdio).
 * - _exit, which startup_cortexm.c calls with main's result: prints the stack
 *   used ("stack N", bytes, from startup_cortexm.c's kd_stack_used), then ends
 *   by semihosting SYS_EXIT_EXTENDED, so that the status becomes QEMU's exit
 *   status; with -DBOARD_UART, the core sleeps instead.
 *
 * Semihosting stops a core that runs without a debugger attached (the BKPT
 * instruction faults): on a board on its own, build with -DBOARD_UART or give
 * kd_board_write your own output.
 */
#include <stdint.h>

void kd_board_write(const char *s);
void _exit(int status);
unsigned long kd_stack_used(void);

static void write_stack_used(void)
{
    char line[32] = "stack ", tmp[12];
    unsigned long v = kd_stack_used();
    int n = 0, i = 6;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        line[i++] = tmp[--n];
    line[i++] = '\n';
    line[i] = 0;
    kd_board_write(line);
}

#ifndef BOARD_UART

/* Arm semihosting on M-profile: operation in r0, argument in r1, BKPT 0xAB. */
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

enum { SYS_WRITE0 = 0x04, SYS_EXIT_EXTENDED = 0x20, ADP_Stopped_ApplicationExit = 0x20026 };

void kd_board_write(const char *s)
{
    semihost(SYS_WRITE0, s);
}

void _exit(int status)
{
    /* reason and exit code; the debugger (or QEMU) ends the program */
    const uint32_t block[2] = {ADP_Stopped_ApplicationExit, (uint32_t)status};
    write_stack_used();
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;)
        __asm__ volatile("wfi");
}

#else

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))

#ifndef BOARD_UART_BAUDDIV
#define BOARD_UART_BAUDDIV 217u /* 25 MHz / 115200 baud */
#endif

static void uart_putc(char c)
{
    while (UART_STATE & 1u) /* TX buffer full */
        ;
    UART_DATA = (uint32_t)(unsigned char)c;
}

void kd_board_write(const char *s)
{
    if (!(UART_CTRL & 1u)) {
        UART_BAUDDIV = BOARD_UART_BAUDDIV;
        UART_CTRL = 1u; /* TX enable */
    }
    for (; *s; s++) {
        if (*s == '\n')
            uart_putc('\r');
        uart_putc(*s);
    }
}

void _exit(int status)
{
    (void)status;
    write_stack_used();
    for (;;)
        __asm__ volatile("wfi");
}

#endif
