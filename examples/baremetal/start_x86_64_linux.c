/* _start for a -nostdlib -static link on x86-64 Linux, to run the freestanding
 * build on the host: call main and pass its result to the exit system call.
 * On a microcontroller the vendor's startup code (vector table, .data/.bss
 * initialisation) takes this place. */
int main(void);

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    call main\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n"
        "    syscall\n"
        "    hlt\n");
