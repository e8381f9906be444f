/* Startup for Cortex-M3/M4/M7, written for kdcc's examples: the vector table,
 * and a reset handler that enables the FPU, copies .data from flash to RAM,
 * zeroes .bss, paints the stack (kd_stack_used tells how much of it was used),
 * calls main and passes its result to _exit (board_mps2.c).
 *
 * The symbols come from the linker script (mps2.ld, cortexm_sections.ld).
 * Only the 16 system exceptions have vectors: the examples enable no interrupt.
 * Every fault ends the program with status 128 + the exception number, so a
 * fault under QEMU ends the run instead of hanging it.
 *
 * No C library start-up runs (no constructors, no stdio): the emitted C and
 * newlib's math functions need none.
 */
#include <stdint.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_bottom[],
    __stack_top[];

int main(void);
void _exit(int status);
void Reset_Handler(void);
void Default_Handler(void);
unsigned long kd_stack_used(void);

#define STACK_PAINT 0x5ac4a5c4u

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* full access to coprocessors 10 and 11 (the FPU) before any float instruction */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    {
        const uint32_t *s = __data_load;
        uint32_t *d = __data_start;
        while (d < __data_end)
            *d++ = *s++;
        for (d = __bss_start; d < __bss_end; d++)
            *d = 0;
    }
    {
        /* paint the stack below this frame, for kd_stack_used */
        uint32_t *sp, *p;
        __asm__ volatile("mov %0, sp" : "=r"(sp));
        for (p = __stack_bottom; p < sp - 32; p++)
            *p = STACK_PAINT;
    }
    _exit(main());
}

/* The most stack used so far, in bytes: from the stack's top down to the lowest
 * word whose paint was overwritten. */
unsigned long kd_stack_used(void)
{
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT)
        p++;
    return (unsigned long)((const char *)__stack_top - (const char *)p);
}

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    _exit(128 + (int)(ipsr & 0x1ffu));
}

typedef void (*kd_vector)(void);

__attribute__((section(".vectors"), used)) const kd_vector kd_vector_table[16] = {
    (kd_vector)(uintptr_t)__stack_top, /* initial stack pointer */
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,      /* reserved */
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,               /* reserved */
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};
