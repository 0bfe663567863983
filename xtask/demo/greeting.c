/* `cargo xtask demo` rewrites the string below, recompiles this file and relinks. */
const char *greeting(void) { return "hello from weld"; }
int greeting_count(void) { return 2; }
