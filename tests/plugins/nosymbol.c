/*
 * nosymbol.c - a shared object that is not a channel plugin.
 */
#include "config.h"

int nosymbol_answer(void);

int
nosymbol_answer(void)
{
	return 42;
}
