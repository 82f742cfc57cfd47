/* A shared library of the build-id test: rebuilt after recording with another build-id. */
int lib_value(void) { return 42; }
