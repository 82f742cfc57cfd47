/* The program the command-line tests record: `ttd record --break checkpoint` gives
 * ticks 1-3 at its three hits (counter = 1, 2, 3), then the exit. */
#include <stdio.h>
#include <unistd.h>

#define PAGES 40
static char pages[PAGES][4096];
int counter;

int value(void) { return counter * 100; }
int spin(void) { for (;;) __asm__ volatile(""); return 0; }
int touch_pages(int n)  /* changes n pages of .bss: n rows of dirtied pages */
{
	for (int i = 0; i < n && i < PAGES; i++)
		pages[i][8] = (char)(counter + i + 1);
	return n;
}
int write_back(void)  /* writes a page with the bytes it had: written, not changed */
{
	*(volatile char *)&pages[0][0] = pages[0][0];
	return 0;
}
int shout(void)  /* terminal escapes: set the clipboard (OSC 52), clear the screen */
{
	printf("\033]52;c;ZXZpbA==\a\033[2Jout\n");
	fprintf(stderr, "\033[31merr\r\n");
	fflush(stdout);
	return 7;
}
void checkpoint(int n) { __asm__ volatile("" ::"r"(n) : "memory"); }

int main(void)
{
	for (counter = 1; counter <= 3; counter++)
		checkpoint(counter);
	printf("target done\n");
	return 0;
}
