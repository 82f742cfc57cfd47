/* Target of the build-id test: calls into libpart.so, stops at checkpoint. */
int lib_value(void);
void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
int main(void) { checkpoint(); return lib_value() == 42 ? 0 : 1; }
