/* `ttd-pageserver --abi` (abi.c). */
#ifndef TTD_ABI_H
#define TTD_ABI_H

#include <stdio.h>

void abi_print(FILE *f);

#endif
